# Study A (vib_vim): VIM vs VIB vs deterministic.  One job per (objective, beta, seed): jobs are
# independent, so Snakemake spreads them over cores, GPUs or cluster nodes, and an interrupted
# grid keeps every finished model.  The steps: `infomax vib_vim <step>` (src/infomax/vib_vim/cli.py).


rule train_vib_vim:
    conda:
        ENV
    input:
        data=f"{OUT}/data/mnist.pt",
    output:
        f"{OUT}/vib_vim/models/{{objective}}_b{{beta}}_s{{seed}}.pt",
    params:
        settings=lambda wc: settings(runs_a.train_settings(X, wc.objective, wc.beta, wc.seed, VV["K"])),
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/train/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/train/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax vib_vim train --data {input.data} --out {output} --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


use rule train_vib_vim as train_vib_vim_k2 with:
    output:
        f"{OUT}/vib_vim/models/k2/{{objective}}_b{{beta}}_s{{seed}}.pt",
    params:
        settings=lambda wc: settings(runs_a.train_settings(X, wc.objective, wc.beta, wc.seed, 2)),
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
        settings=lambda wc: settings(runs_a.eval_settings(X, wc.seed)),
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/evaluate/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/evaluate/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax vib_vim evaluate --data {input.data} --model {input.model} --out {output} "
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
        settings=lambda wc: settings(runs_a.eval_settings(X, wc.seed)),
        device=X["device"],
    threads: TORCH_THREADS
    resources:
        gpu=GPU,
    log:
        f"{OUT}/logs/vib_vim/evaluate/k2/{{objective}}_b{{beta}}_s{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/evaluate/k2/{{objective}}_b{{beta}}_s{{seed}}.tsv"
    shell:
        "python -m infomax vib_vim evaluate --data {input.data} --model {input.model} --out {output.json} "
        "--embedding {output.embedding} --no-robustness --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule collect_vib_vim:
    conda:
        ENV
    input:
        vib_vim_evals(),
    output:
        **tables("vib_vim"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{OUT}/logs/vib_vim/collect.log",
    benchmark:
        f"{OUT}/benchmarks/vib_vim/collect.tsv"
    shell:
        "python -m infomax vib_vim collect --out-dir {params.out_dir} {input} > {log} 2>&1"


rule figures_vib_vim:
    conda:
        ENV
    input:
        **tables("vib_vim"),
        embeddings=vib_vim_embeddings(),
    output:
        figure_outputs("vib_vim", "Study A: VIM vs VIB"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{OUT}/logs/figures_vib_vim.log",
    benchmark:
        f"{OUT}/benchmarks/figures_vib_vim.tsv"
    shell:
        "python -m infomax vib_vim figures --metrics {input.metrics} --validation {input.validation} "
        "--robustness {input.robustness} --embeddings {input.embeddings} --out-dir {params.out_dir} "
        "> {log} 2>&1"
