# Figures, the summary (DVC metrics and plot tables) and the replication report.  They read only
# the collected CSVs and the K=2 embeddings: they never touch a model.  The PNGs carry captions
# (workflow/report/<figure>.rst) for `snakemake --report results/<experiment>/report.html`.


rule figures_vib_vim:
    conda:
        ENV
    input:
        metrics=f"{OUT}/vib_vim/metrics.csv",
        validation=f"{OUT}/vib_vim/validation.csv",
        robustness=f"{OUT}/vib_vim/robustness.csv",
        embeddings=vib_vim_embeddings(),
    output:
        figure_outputs(FIGURES_VIB_VIM, "Study A: VIM vs VIB"),
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
        figure_outputs(FIGURES_INFOBAL, "Study B: InfoBal vs DIM"),
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


rule replication:
    conda:
        ENV
    input:
        metrics=f"{OUT}/vib_vim/metrics.csv",
        validation=f"{OUT}/vib_vim/validation.csv",
        robustness=f"{OUT}/vib_vim/robustness.csv",
        curves=f"{OUT}/infobal/curves.csv",
        probes=f"{OUT}/infobal/probes.csv",
        published=PUBLISHED,
        captions=[f"{CAPTIONS}/{f['name']}.rst" for f in report_figures()],
        figures=[f["path"] for f in report_figures()],
    output:
        claims=report(f"{OUT}/claims.json", caption="../report/claims.rst", category="Replication report"),
        markdown=f"{OUT}/REPLICATION.md",
        html=report(f"{OUT}/REPLICATION.html", caption="../report/replication.rst", category="Replication report"),
    params:
        settings=settings(replication_settings()),
        captions=lambda wc, input: os.path.dirname(input.captions[0]),
    log:
        f"{OUT}/logs/replication.log",
    benchmark:
        f"{OUT}/benchmarks/replication.tsv"
    shell:
        "python -m infomax replication --settings {params.settings:q} --metrics {input.metrics} "
        "--validation {input.validation} --robustness {input.robustness} --curves {input.curves} "
        "--probes {input.probes} --published {input.published} --captions {params.captions} "
        "--claims {output.claims} --markdown {output.markdown} --html {output.html} > {log} 2>&1"
