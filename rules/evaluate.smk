"""Predictions → per-image metrics and synergy → statistics, split selection and tables."""


rule score_predictions:
    input:
        predictions=regime_predictions(),
        split="results/{dataset}/splits/{regime}.csv",
        **store_files(),
        code=script_code("score_predictions"),
    output:
        metrics=regime_metrics(),
        **synergy_output(),
    log:
        "logs/score_predictions/{dataset}/{regime}.log",
    benchmark:
        "benchmarks/score_predictions/{dataset}/{regime}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=score_mem_mb,
        runtime=score_runtime,
    params:
        models=[[init, rep] for init in INITS for rep in REPLICATES],
    script:
        "../workflow/scripts/score_predictions.py"


rule regime_statistics:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{{regime}}/{init}/rep{rep}.csv",
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=script_code("regime_statistics"),
    output:
        per_image="results/{dataset}/stats/{regime}/per_image.csv",
        tests="results/{dataset}/stats/{regime}/tests.csv",
        normality="results/{dataset}/stats/{regime}/normality.csv",
    log:
        "logs/regime_statistics/{dataset}/{regime}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=statistics_mem_mb,
    params:
        stats=stats_settings(),
    script:
        "../workflow/scripts/regime_statistics.py"


rule select_split:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{regime}/{init}/rep{rep}.csv",
            regime=SPLITS,
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=script_code("select_split"),
    output:
        "results/{dataset}/stats/split_selection.csv",
    log:
        "logs/select_split/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=statistics_mem_mb,
    params:
        practical_difference=config["stats"]["practical_difference"],
        fixed=config["stats"]["selection"]["fixed"],
    script:
        "../workflow/scripts/select_split.py"


rule make_tables:
    input:
        stats=expand(
            "results/{dataset}/stats/{regime}/{name}.csv",
            dataset=DATASETS,
            regime=REGIMES,
            name=["per_image", "tests", "normality", "synergy"],
        ),
        selections=expand(
            "results/{dataset}/stats/split_selection.csv", dataset=DATASETS
        ),
        code=script_code("make_tables"),
    output:
        csv=study_table_reports(),
        md=expand("results/tables/{table}.md", table=STUDY_TABLES),
    log:
        "logs/make_tables/make_tables.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=tables_mem_mb,
    params:
        stats=stats_settings(),
        datasets=DATASETS,
        regimes=REGIMES,
        test_fraction=config["splits"]["test_fraction"],
    script:
        "../workflow/scripts/make_tables.py"
