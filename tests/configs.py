"""Step settings for tests, built from the project's config (paper, the complete experiment):
the dataclasses have no defaults, so a test states only what it changes."""

from pathlib import Path

from infomax.config import experiment
from infomax.studies import load
from infomax.dim_infobal.evaluate import EvalConfig as EvalConfigB
from infomax.dim_infobal.train import TrainConfig as TrainConfigB
from infomax.report import ReportConfig
from infomax.vib_vim import runs as vib_vim_runs
from infomax.vib_vim.evaluate import EvalConfig as EvalConfigA
from infomax.vib_vim.train import TrainConfig as TrainConfigA

ROOT = Path(__file__).resolve().parents[1]


def native_bf16_only():
    """Skip a test comparing bfloat16 with float32 numbers where this CPU emulates bfloat16: its
    tolerances were measured where bfloat16 is native (AVX-512 BF16), and an emulated run rounds
    otherwise (on an AVX2 EPYC InfoBal DV's losses were 9.1% apart, against 1.5% natively)."""
    import pytest
    import torch

    from infomax.loop import native_bfloat16

    native, why = native_bfloat16(torch.device("cpu"))
    return pytest.mark.skipif(not native, reason=f"bfloat16 is emulated here ({why}): the tolerances "
                                                 f"hold where it is native")
CONFIG = load(ROOT / "config/config.yaml", "paper")
PAPER = experiment(CONFIG, "paper")


def train_a(objective="vib", beta=1e-3, seed=0, K=256, **kw) -> TrainConfigA:
    return TrainConfigA(**{**vib_vim_runs.train_settings(PAPER, objective, beta, seed, K), **kw})


def eval_a(**kw) -> EvalConfigA:
    """Study A's evaluation with paper's evaluate block (a model's seed: 0)."""
    return EvalConfigA(**{**PAPER["vib_vim"]["evaluate"], "seed": 0, **kw})


def train_b(kind="dim_l", estimator="jsd", seed=0, method=None, **kw) -> TrainConfigB:
    """A study-B job of ``kind`` with paper's train block and the kind's options (none for the
    random floor, or for a kind the config does not define: TrainConfig itself rejects those)."""
    dim_infobal = PAPER["dim_infobal"]
    opts = dim_infobal["kinds"].get(kind, {})
    return TrainConfigB(**{**dim_infobal["train"], **opts, "kind": kind, "method": method or kind, "estimator": estimator,
                           "seed": seed, **kw})


def eval_b(**kw) -> EvalConfigB:
    """Study B's evaluation with paper's evaluate block (a model's seed: 0)."""
    return EvalConfigB(**{**PAPER["dim_infobal"]["evaluate"], "seed": 0, **kw})


def report_config(**kw) -> ReportConfig:
    return ReportConfig.of({**CONFIG["report"], **kw})


def train_one(cfg: TrainConfigA, data, out, **kw) -> dict:
    """One study-A model trained alone: a group of one (its resume state <out>.resume)."""
    from infomax.loop import resume_path
    from infomax.vib_vim.train import train

    out = Path(out)
    return train([cfg], data, [out], resume_path(out), **{"device": "cpu", "progress": False, **kw})[0]
