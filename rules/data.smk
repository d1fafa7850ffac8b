"""Raw data (phantoms or downloads) → fixed-size slices and their manifest."""


localrules:
    check_local_data,
    download_kits19_case,
    download_isic_part,
    fetch_isic_labels,


rule make_phantom:
    input:
        code=script_code("make_phantom"),
    output:
        directory("resources/phantom/{dataset}"),
    log:
        "logs/make_phantom/{dataset}.log",
    benchmark:
        "benchmarks/make_phantom/{dataset}.tsv"
    priority: 60  # data preparation first: every dataset's long training chain can then start
    conda:
        "../envs/synergyseg.yaml"
    params:
        format=dataset_setting("format"),
        phantom=dataset_setting("phantom"),
        seed=config["seed"],
    script:
        "../workflow/scripts/make_phantom.py"


rule download_kits19_case:
    output:
        imaging="resources/raw/{dataset}/case_{case}/imaging.nii.gz",
        segmentation="resources/raw/{dataset}/case_{case}/segmentation.nii.gz",
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
    log:
        "logs/download_isic_part/{dataset}/{part}.log",
    retries: 2
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/download_isic_part.py"


rule extract_isic:
    input:
        code=script_code("extract_isic"),
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
    log:
        "logs/fetch_isic_labels/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    params:
        fetch=dataset_setting("fetch_labels"),
    script:
        "../workflow/scripts/fetch_isic_labels.py"


rule make_slices:
    input:
        raw=raw_inputs,
        code=script_code("make_slices"),
    output:
        **slice_outputs(),
    log:
        "logs/make_slices/{dataset}.log",
    benchmark:
        "benchmarks/make_slices/{dataset}.tsv"
    priority: 60
    conda:
        "../envs/synergyseg.yaml"
    threads: lambda wc: config["threads"]["slices"]
    resources:
        mem_mb=slices_mem_mb,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        format=dataset_setting("format"),
        raw=raw_root,
        labels=labels_csv,
        cases=kits_case_list,
        slices=dataset_setting("slices"),
    script:
        "../workflow/scripts/make_slices.py"


rule check_local_data:
    input:
        code=script_code("check_local_data"),
    output:
        "resources/checked/{dataset}.csv",
    log:
        "logs/check_local_data/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    params:
        format=dataset_setting("format"),
        raw=raw_root,
        labels=labels_csv,
    script:
        "../workflow/scripts/check_local_data.py"
