# Study B (dim_infobal): Deep InfoMax vs InfoBal.  One training job per (method, estimator, seed),
# plus the untrained `random` encoder per seed (the floor of every probe); one evaluation job per
# seed.  Pre-training writes the per-epoch curve into the checkpoint; evaluation probes the frozen
# encoders.  The steps:
# `infomax dim_infobal <step>` (src/infomax/dim_infobal/cli.py).
from infomax.dim_infobal import runs as dim_infobal_runs

DIM_INFOBAL = X["dim_infobal"]
DIM_INFOBAL_DATA = f"{OUT}/data/{DIM_INFOBAL['dataset']}.pt"
# file names are <method>_<estimator>_s<seed>: the method wildcard only matches a name the config
# defines (or the built-in untrained floor), so the split is never ambiguous.
DIM_INFOBAL_METHODS = "|".join(sorted([*DIM_INFOBAL["methods"], dim_infobal_runs.RANDOM[0]], key=len, reverse=True))


wildcard_constraints:
    method=DIM_INFOBAL_METHODS,
    estimator=r"[a-z0-9]+",  # file names are <method>_<estimator>_s<seed>: method names are matched exactly


# every run's model and evaluation of one seed, with the {seed} wildcard left in; every evaluation
DIM_INFOBAL_PAIRS = dict.fromkeys((m, e) for m, e, _ in dim_infobal_runs.runs(X))
DIM_INFOBAL_SEED_MODELS = [f"{OUT}/dim_infobal/models/{dim_infobal_runs.run_name(m, e, '{seed}')}.pt"
                           for m, e in DIM_INFOBAL_PAIRS]
DIM_INFOBAL_SEED_EVALS = [f"{OUT}/dim_infobal/eval/{dim_infobal_runs.run_name(m, e, '{seed}')}.json"
                          for m, e in DIM_INFOBAL_PAIRS]
DIM_INFOBAL_EVALS = [f"{OUT}/dim_infobal/eval/{dim_infobal_runs.run_name(*r)}.json" for r in dim_infobal_runs.runs(X)]


rule train_dim_infobal:
    conda:
        ENV
    input:
        data=DIM_INFOBAL_DATA,
    output:
        f"{OUT}/dim_infobal/models/{{method}}_{{estimator}}_s{{seed}}.pt",
    params:
        settings=lambda wc: settings(dim_infobal_runs.train_settings(X, wc.method, wc.estimator, int(wc.seed))),
        # what the prepared file must be made from (a function: an experiment without study B has no data block for it)
        data_settings=lambda wc: settings(X["data"][DIM_INFOBAL["dataset"]]),
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/dim_infobal/train/{{method}}_{{estimator}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/dim_infobal/train/{{method}}_{{estimator}}_s{{seed}}.tsv"
    shell:
        "python -m infomax dim_infobal train --data {input.data:q} --out {output:q} --settings {params.settings:q} "
        "--data-settings {params.data_settings:q} --device {params.device} --threads {threads} > {log:q} 2>&1"


rule evaluate_dim_infobal:
    # one job per seed: its models are probed in one process (data and torch loaded once)
    conda:
        ENV
    input:
        data=DIM_INFOBAL_DATA,
        models=DIM_INFOBAL_SEED_MODELS,
    output:
        DIM_INFOBAL_SEED_EVALS,
    params:
        settings=settings(DIM_INFOBAL["evaluate"]),  # each model is evaluated with the seed it trained with
        data_settings=lambda wc: settings(X["data"][DIM_INFOBAL["dataset"]]),
        device=X["device"],
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/dim_infobal/evaluate/s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/dim_infobal/evaluate/s{{seed}}.tsv"
    shell:
        "python -m infomax dim_infobal evaluate --data {input.data:q} --models {input.models:q} "
        "--out-dir {params.out_dir:q} --settings {params.settings:q} --data-settings {params.data_settings:q} "
        "--device {params.device} "
        "--threads {threads} > {log:q} 2>&1"


rule collect_dim_infobal:
    conda:
        ENV
    input:
        DIM_INFOBAL_EVALS,
    output:
        **tables("dim_infobal"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.curves),
    log:
        f"{OUT}/logs/dim_infobal/collect.log",
    benchmark:
        f"{OUT}/benchmarks/dim_infobal/collect.tsv"
    shell:
        "python -m infomax dim_infobal collect --out-dir {params.out_dir:q} {input:q} > {log:q} 2>&1"


rule figures_dim_infobal:
    conda:
        ENV
    input:
        **tables("dim_infobal"),
    output:
        figure_outputs("dim_infobal"),
    params:
        settings=settings(OPTIONS["dim_infobal"]),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{OUT}/logs/figures_dim_infobal.log",
    benchmark:
        f"{OUT}/benchmarks/figures_dim_infobal.tsv"
    shell:
        "python -m infomax dim_infobal figures --settings {params.settings:q} --curves {input.curves:q} "
        "--probes {input.probes:q} --robustness {input.robustness:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
