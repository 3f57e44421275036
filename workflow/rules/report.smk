# Figures, the summary (DVC metrics and plot tables) and, later, the replication report.  They read
# only the collected CSVs and the K=2 embeddings: they never touch a model.


rule figures_vib_vim:
    conda:
        ENV
    input:
        metrics=f"{OUT}/vib_vim/metrics.csv",
        validation=f"{OUT}/vib_vim/validation.csv",
        robustness=f"{OUT}/vib_vim/robustness.csv",
        embeddings=vib_vim_embeddings(),
    output:
        [f"{OUT}/figures/{f}.{ext}" for f in FIGURES_VIB_VIM for ext in ("png", "pdf")],
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{OUT}/logs/figures_vib_vim.log",
    benchmark:
        f"{OUT}/benchmarks/figures_vib_vim.tsv"
    shell:
        "python -m infomax figures-vib-vim --metrics {input.metrics} --validation {input.validation} "
        "--robustness {input.robustness} --embeddings {input.embeddings} --out-dir {params.out_dir} "
        "> {log} 2>&1"


rule figures_infobal:
    conda:
        ENV
    input:
        curves=f"{OUT}/infobal/curves.csv",
        probes=f"{OUT}/infobal/probes.csv",
        robustness=f"{OUT}/infobal/robustness.csv",
    output:
        [f"{OUT}/figures/{f}.{ext}" for f in FIGURES_INFOBAL for ext in ("png", "pdf")],
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{OUT}/logs/figures_infobal.log",
    benchmark:
        f"{OUT}/benchmarks/figures_infobal.tsv"
    shell:
        "python -m infomax figures-infobal --curves {input.curves} --probes {input.probes} "
        "--robustness {input.robustness} --out-dir {params.out_dir} > {log} 2>&1"


rule summary:
    conda:
        ENV
    input:
        metrics=f"{OUT}/vib_vim/metrics.csv",
        validation=f"{OUT}/vib_vim/validation.csv",
        robustness=f"{OUT}/vib_vim/robustness.csv",
        infobal_probes=f"{OUT}/infobal/probes.csv",
    output:
        summary=f"{OUT}/summary.json",
        plots=summary_plot_tables(),
    params:
        plots_dir=lambda wc, output: os.path.dirname(output.plots[0]),
    log:
        f"{OUT}/logs/summary.log",
    benchmark:
        f"{OUT}/benchmarks/summary.tsv"
    shell:
        "python -m infomax summarize --metrics {input.metrics} --validation {input.validation} "
        "--robustness {input.robustness} --infobal-probes {input.infobal_probes} --out {output.summary} "
        "--plots-dir {params.plots_dir} > {log} 2>&1"
