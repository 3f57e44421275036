"""Study A's run lists: which models an experiment trains, their file names and each training
job's settings.  Plain Python on the merged experiment (no torch): the workflow's common.smk,
the bench and the tests call it."""

from ..config import beta_tag


def run_name(objective: str, beta: float, seed: int) -> str:
    return f"{objective}_b{beta_tag(beta)}_s{seed}"


def runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of every main-K model; deterministic has the single beta 0."""
    vv = exp["vib_vim"]
    out = []
    for obj in vv["objectives"]:
        betas = [0.0] if obj == "deterministic" else vv["betas"][obj]
        out += [(obj, float(b), int(s)) for b in betas for s in vv["seeds"]]
    return out


def k2_runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of the K=2 embedding models: the first seed only."""
    vv = exp["vib_vim"]
    seed = int(vv["seeds"][0])
    return [(obj, float(b), seed) for obj, betas in vv["k2"]["betas"].items()
            if obj in vv["objectives"] for b in betas]


def train_settings(exp: dict, objective: str, beta: float, seed: int, K: int) -> dict:
    """The settings of one training job: the train block (for K=2 models with vib_vim.k2.train
    merged on), then what identifies the run."""
    vv = exp["vib_vim"]
    train = {**vv["train"], **(vv["k2"]["train"] if K == 2 else {})}
    return {**train, "objective": objective, "beta": float(beta), "seed": int(seed), "K": int(K)}


def eval_settings(exp: dict, seed: int) -> dict:
    return {**exp["vib_vim"]["evaluate"], "seed": int(seed)}
