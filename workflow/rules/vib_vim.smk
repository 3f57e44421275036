# Study A (vib_vim): VIM vs VIB vs deterministic.  One job trains a group of models (one objective
# and K, up to vib_vim.group_size of its (seed, beta) runs) as one stacked model, and one job
# evaluates the group; a local rule links each model and evaluation to its own path, so the output
# contract stays one file per model.  Groups are independent, so Snakemake spreads them over cores,
# GPUs or cluster nodes, and an interrupted grid keeps every finished group.  The steps:
# `infomax vib_vim <step>` (src/infomax/vib_vim/cli.py); the groups: vib_vim_runs.groups.
from infomax.vib_vim import runs as vib_vim_runs
from infomax.vib_vim.runs import DATASET as VIB_VIM_DATASET


wildcard_constraints:
    objective="|".join(vib_vim_runs.OBJECTIVES),
    beta=r"0|[0-9.]+e-?[0-9]+",


# one training job and one evaluation job per group of models (vib_vim_runs.groups); each model and
# evaluation linked to its own path; K=2 models for the embedding figure
VIB_VIM = X["vib_vim"]
VIB_VIM_DATA = f"{OUT}/data/{VIB_VIM_DATASET}.pt"
VIB_VIM_GROUP = vib_vim_runs.group_of(X)             # run name -> its group
VIB_VIM_GROUP_K2 = vib_vim_runs.group_of(X, k2=True)


VIB_VIM_EVALS = ([f"{OUT}/vib_vim/eval/{vib_vim_runs.run_name(*r)}.json" for r in vib_vim_runs.runs(X)]
                 + [f"{OUT}/vib_vim/eval/k2/{vib_vim_runs.run_name(*r)}.json" for r in vib_vim_runs.k2_runs(X)])
VIB_VIM_EMBEDDINGS = [f"{OUT}/vib_vim/embeddings/{vib_vim_runs.run_name(*r)}.npz" for r in vib_vim_runs.k2_runs(X)]


rule train_vib_vim:
    conda:
        ENV
    input:
        data=VIB_VIM_DATA,
    output:
        directory(f"{OUT}/vib_vim/groups/{{group}}/models"),
    params:
        settings=lambda wc: settings(vib_vim_runs.group_train_settings(X, wc.group)),
        data_settings=settings(X["data"][VIB_VIM_DATASET]),  # what the prepared file must be made from
        resume=lambda wc: f"{OUT}/vib_vim/groups/{wc.group}.resume",
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/train/{{group}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/train/{{group}}.tsv"
    shell:
        "python -m infomax vib_vim train --data {input.data:q} --out-dir {output:q} --resume {params.resume:q} "
        "--settings {params.settings:q} --data-settings {params.data_settings:q} --device {params.device} "
        "--threads {threads} > {log:q} 2>&1"


rule evaluate_vib_vim:
    conda:
        ENV
    input:
        data=VIB_VIM_DATA,
        models=f"{OUT}/vib_vim/groups/{{group}}/models",
    output:
        directory(f"{OUT}/vib_vim/groups/{{group}}/eval"),
    params:
        settings=settings(VIB_VIM["evaluate"]),
        data_settings=settings(X["data"][VIB_VIM_DATASET]),
        runs=lambda wc: " ".join(vib_vim_runs.run_name(o, b, s) for o, b, s, _ in vib_vim_runs.groups(X)[wc.group]),
        # K=2 groups: the 2-D embedding for the figure, no robustness
        k2=lambda wc: "--embeddings --no-robustness" if wc.group.startswith("k2_") else "",
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/evaluate/{{group}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/evaluate/{{group}}.tsv"
    shell:
        "python -m infomax vib_vim evaluate --data {input.data:q} --models-dir {input.models:q} --runs {params.runs} "
        "--out-dir {output:q} {params.k2} --settings {params.settings:q} --data-settings {params.data_settings:q} "
        "--device {params.device} --threads {threads} "
        "> {log:q} 2>&1"


rule link_vib_vim:
    """A model and its evaluation at their own paths: hard links into the group's folders."""
    localrule: True
    input:
        models=lambda wc: f"{OUT}/vib_vim/groups/{VIB_VIM_GROUP[wc.run]}/models",
        evals=lambda wc: f"{OUT}/vib_vim/groups/{VIB_VIM_GROUP[wc.run]}/eval",
    output:
        model=f"{OUT}/vib_vim/models/{{run}}.pt",
        eval=f"{OUT}/vib_vim/eval/{{run}}.json",
    log:
        f"{OUT}/logs/vib_vim/link/{{run}}.log",
    wildcard_constraints:
        run=r"[^/]+",
    run:
        vib_vim_runs.link_files(input.models, input.evals, wildcards.run, dict(output), log[0])


rule link_vib_vim_k2:
    localrule: True
    input:
        models=lambda wc: f"{OUT}/vib_vim/groups/{VIB_VIM_GROUP_K2[wc.run]}/models",
        evals=lambda wc: f"{OUT}/vib_vim/groups/{VIB_VIM_GROUP_K2[wc.run]}/eval",
    output:
        model=f"{OUT}/vib_vim/models/k2/{{run}}.pt",
        eval=f"{OUT}/vib_vim/eval/k2/{{run}}.json",
        embedding=f"{OUT}/vib_vim/embeddings/{{run}}.npz",
    log:
        f"{OUT}/logs/vib_vim/link/k2/{{run}}.log",
    wildcard_constraints:
        run=r"[^/]+",
    run:
        vib_vim_runs.link_files(input.models, input.evals, wildcards.run, dict(output), log[0])


rule collect_vib_vim:
    conda:
        ENV
    input:
        VIB_VIM_EVALS,
    output:
        **tables("vib_vim"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{OUT}/logs/vib_vim/collect.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/collect.tsv"
    shell:
        "python -m infomax vib_vim collect --out-dir {params.out_dir:q} {input:q} > {log:q} 2>&1"


rule figures_vib_vim:
    conda:
        ENV
    input:
        **tables("vib_vim"),
        embeddings=VIB_VIM_EMBEDDINGS,
    output:
        figure_outputs("vib_vim"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
        samples=VIB_VIM["evaluate"]["samples"],
    log:
        f"{OUT}/logs/figures_vib_vim.log",
    benchmark:
        f"{OUT}/benchmarks/figures_vib_vim.tsv"
    shell:
        "python -m infomax vib_vim figures --metrics {input.metrics:q} --validation {input.validation:q} "
        "--robustness {input.robustness:q} --embeddings {input.embeddings:q} --samples {params.samples} "
        "--out-dir {params.out_dir:q} "
        "> {log:q} 2>&1"
