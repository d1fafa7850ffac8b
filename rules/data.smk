"""Raw data (phantoms or downloads) → fixed-size slices and their manifest."""


localrules:
    check_local_data,
    download_kits19_case,
    download_isic_part,
    fetch_isic_labels,


rule make_phantom:
    output:
        directory("resources/phantom/{dataset}"),
    input:
        code=package_files("data/phantoms.py"),
    params:
        format=lambda wc: dataset_config(wc)["format"],
        phantom=lambda wc: dataset_config(wc)["phantom"],
        seed=lambda wc: config["seed"],
    log:
        "logs/make_phantom/{dataset}.log",
    benchmark:
        "benchmarks/make_phantom/{dataset}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/make_phantom.py"


rule download_kits19_case:
    output:
        imaging="resources/raw/{dataset}/case_{case}/imaging.nii.gz",
        segmentation="resources/raw/{dataset}/case_{case}/segmentation.nii.gz",
    params:
        sha256=lambda wc: dataset_config(wc)["sha256"],
    log:
        "logs/download_kits19_case/{dataset}/case_{case}.log",
    retries: 2
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/download_kits19_case.py"


rule download_isic_part:
    output:
        "resources/raw/{dataset}/zips/{part}.zip",
    params:
        sha256=lambda wc: dataset_config(wc)["sha256"],
    log:
        "logs/download_isic_part/{dataset}/{part}.log",
    retries: 2
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/download_isic_part.py"


rule extract_isic:
    input:
        zips=lambda wc: expand(
            "resources/raw/{dataset}/zips/{part}.zip",
            dataset=wc.dataset,
            part=dataset_config(wc)["parts"],
        ),
    output:
        directory("resources/raw/{dataset}/isic"),
    log:
        "logs/extract_isic/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/extract_isic.py"


rule fetch_isic_labels:
    input:
        isic="resources/raw/{dataset}/isic",
    output:
        "resources/raw/{dataset}/labels.csv",
    params:
        fetch=lambda wc: dataset_config(wc)["fetch_labels"],
    log:
        "logs/fetch_isic_labels/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/fetch_isic_labels.py"


rule make_slices:
    input:
        raw=raw_inputs,
        code=package_files(
            "data/slicing.py", "data/sources.py", "data/ct.py", "data/consensus.py", "io.py"
        ),
    output:
        manifest="results/{dataset}/slices/manifest.csv",
        png=directory("results/{dataset}/slices/png"),
    params:
        format=lambda wc: dataset_config(wc)["format"],
        raw=raw_root,
        labels=labels_csv,
        slices=lambda wc: dataset_config(wc)["slices"],
    threads: lambda wc: config["threads"]["slices"]
    resources:
        mem_mb=8000,
        runtime=240,
    log:
        "logs/make_slices/{dataset}.log",
    benchmark:
        "benchmarks/make_slices/{dataset}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/make_slices.py"


rule check_local_data:
    output:
        "resources/checked/{dataset}.csv",
    params:
        format=lambda wc: dataset_config(wc)["format"],
        raw=raw_root,
        labels=labels_csv,
    log:
        "logs/check_local_data/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/check_local_data.py"
