# The summary (DVC metrics and plot tables) and the replication report.  They read only the
# collected CSVs (and, for the report, the figures it embeds): they never touch a model.


rule summary:
    conda:
        ENV
    input:
        **run_tables(),
    output:
        summary=f"{OUT}/summary.json",
        plots=summary_plot_tables(),
    params:
        tables=table_args(),
        plots_dir=lambda wc, output: os.path.join(os.path.dirname(output.summary), "plots"),
    log:
        f"{OUT}/logs/summary.log",
    benchmark:
        f"{OUT}/benchmarks/summary.tsv"
    shell:
        "python -m infomax summarize {params.tables} --out {output.summary:q} --plots-dir {params.plots_dir:q} "
        "> {log:q} 2>&1"


rule replication:
    conda:
        ENV
    input:
        **run_tables(),
        published=PUBLISHED,
        captions=[f"{CAPTIONS}/{f['name']}.rst" for f in report_figures()] + [f"{CAPTIONS}/forest.rst"],
        figures=[f["path"] for f in report_figures()],
    output:
        claims=report(f"{OUT}/claims.json", caption="../report/claims.rst", category="Replication report"),
        markdown=f"{OUT}/REPLICATION.md",
        html=report(f"{OUT}/REPLICATION.html", caption="../report/replication.rst", category="Replication report"),
        forest=report(f"{OUT}/figures/forest.png", caption="../report/forest.rst", category="Replication report"),
        forest_pdf=f"{OUT}/figures/forest.pdf",
    params:
        settings=settings(replication_settings()),
        tables=table_args(),
        captions=lambda wc, input: os.path.dirname(input.captions[0]),
    log:
        f"{OUT}/logs/replication.log",
    benchmark:
        f"{OUT}/benchmarks/replication.tsv"
    shell:
        "python -m infomax replication --settings {params.settings:q} {params.tables} "
        "--published {input.published:q} --captions {params.captions:q} "
        "--claims {output.claims:q} --markdown {output.markdown:q} --html {output.html:q} --forest {output.forest:q} "
        "> {log:q} 2>&1"
