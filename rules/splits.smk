"""Slice manifest → seeded 80:20 splits → depletion chain → Table S2."""


rule split_data:
    input:
        manifest="results/{dataset}/slices/manifest.csv",
        code=script_code("split_data"),
    output:
        "results/{dataset}/splits/split{index}.csv",
    log:
        "logs/split_data/{dataset}/split{index}.log",
    priority: 60
    conda:
        "../envs/synergyseg.yaml"
    params:
        settings=split_settings,
        seed=config["seed"],
    script:
        "../workflow/scripts/split_data.py"


rule deplete_split:
    input:
        unpack(depletion_inputs),
        code=script_code("deplete_split"),
    output:
        "results/{dataset}/splits/train{percent}.csv",
    log:
        "logs/deplete_split/{dataset}/train{percent}.log",
    priority: 30
    conda:
        "../envs/synergyseg.yaml"
    params:
        settings=split_settings,
        seed=config["seed"],
    script:
        "../workflow/scripts/deplete_split.py"


rule table_s2:
    input:
        splits=expand(
            "results/{dataset}/splits/{regime}.csv", dataset=DATASETS, regime=REGIMES
        ),
        code=script_code("table_s2"),
    output:
        csv=report(
            "results/tables/table_s2.csv",
            category="All datasets",
            subcategory="Tables",
            labels={"table": "table_s2"},
            caption="../report/table_s2.rst",
        ),
        md="results/tables/table_s2.md",
    log:
        "logs/table_s2/table_s2.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/table_s2.py"
