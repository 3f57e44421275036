# Study B: Deep InfoMax vs InfoBal.  One job per (method, estimator, seed), plus the untrained
# `random` encoder per seed (the floor of every probe).  Pre-training writes the per-epoch curve
# into the checkpoint; evaluation probes the frozen encoder.


rule train_infobal:
    conda:
        ENV
    input:
        data=IB_DATA,
    output:
        f"{OUT}/infobal/models/{{method}}_{{estimator}}_s{{seed}}.pt",
    params:
        settings=infobal_settings,
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/infobal/train/{{method}}_{{estimator}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/infobal/train/{{method}}_{{estimator}}_s{{seed}}.tsv"
    shell:
        "python -m infomax train-infobal --data {input.data} --out {output} --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate_infobal:
    conda:
        ENV
    input:
        data=IB_DATA,
        model=f"{OUT}/infobal/models/{{method}}_{{estimator}}_s{{seed}}.pt",
    output:
        f"{OUT}/infobal/eval/{{method}}_{{estimator}}_s{{seed}}.json",
    params:
        settings=infobal_eval_settings,
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/infobal/evaluate/{{method}}_{{estimator}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/infobal/evaluate/{{method}}_{{estimator}}_s{{seed}}.tsv"
    shell:
        "python -m infomax evaluate-infobal --data {input.data} --model {input.model} --out {output} "
        "--settings {params.settings:q} --device {params.device} --threads {threads} > {log} 2>&1"


rule collect_infobal:
    conda:
        ENV
    input:
        infobal_evals(),
    output:
        curves=f"{OUT}/infobal/curves.csv",
        probes=f"{OUT}/infobal/probes.csv",
        robustness=f"{OUT}/infobal/robustness.csv",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.curves),
    log:
        f"{OUT}/logs/infobal/collect.log",
    benchmark:
        f"{OUT}/benchmarks/infobal/collect.tsv"
    shell:
        "python -m infomax collect-infobal --out-dir {params.out_dir} {input} > {log} 2>&1"
