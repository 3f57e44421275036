# Study A: VIM vs VIB vs deterministic.  One job per (objective, beta, seed): jobs are
# independent, so Snakemake spreads them over cores, GPUs or cluster nodes, and an interrupted
# grid keeps every finished model.


rule train_vib_vim:
    conda:
        ENV
    input:
        data=f"{OUT}/data/mnist.pt",
    output:
        f"{OUT}/vib_vim/models/{{objective}}_b{{beta}}_s{{seed}}.pt",
    params:
        settings=lambda wc: vib_vim_settings(wc, VV["K"]),
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/train/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/train/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax train-vib-vim --data {input.data} --out {output} --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


use rule train_vib_vim as train_vib_vim_k2 with:
    output:
        f"{OUT}/vib_vim/models/k2/{{objective}}_b{{beta}}_s{{seed}}.pt",
    params:
        settings=lambda wc: vib_vim_settings(wc, 2),
        device=X["device"],
    log:
        f"{OUT}/logs/vib_vim/train/k2/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/train/k2/{{objective}}_b{{beta}}_s{{seed}}.tsv"


rule evaluate_vib_vim:
    conda:
        ENV
    input:
        data=f"{OUT}/data/mnist.pt",
        model=f"{OUT}/vib_vim/models/{{objective}}_b{{beta}}_s{{seed}}.pt",
    output:
        f"{OUT}/vib_vim/eval/{{objective}}_b{{beta}}_s{{seed}}.json",
    params:
        settings=vib_vim_eval_settings,
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/evaluate/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/evaluate/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax evaluate-vib-vim --data {input.data} --model {input.model} --out {output} "
        "--settings {params.settings:q} --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate_vib_vim_k2:
    conda:
        ENV
    input:
        data=f"{OUT}/data/mnist.pt",
        model=f"{OUT}/vib_vim/models/k2/{{objective}}_b{{beta}}_s{{seed}}.pt",
    output:
        json=f"{OUT}/vib_vim/eval/k2/{{objective}}_b{{beta}}_s{{seed}}.json",
        embedding=f"{OUT}/vib_vim/embeddings/{{objective}}_b{{beta}}_s{{seed}}.npz",
    params:
        settings=vib_vim_eval_settings,
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/evaluate/k2/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/evaluate/k2/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax evaluate-vib-vim --data {input.data} --model {input.model} --out {output.json} "
        "--embedding {output.embedding} --no-robustness --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule collect_vib_vim:
    conda:
        ENV
    input:
        vib_vim_evals(),
    output:
        metrics=f"{OUT}/vib_vim/metrics.csv",
        validation=f"{OUT}/vib_vim/validation.csv",
        robustness=f"{OUT}/vib_vim/robustness.csv",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{OUT}/logs/vib_vim/collect.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/collect.tsv"
    shell:
        "python -m infomax collect-vib-vim --out-dir {params.out_dir} {input} > {log} 2>&1"
