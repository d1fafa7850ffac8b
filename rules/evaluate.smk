"""Predictions → per-image metrics and synergy → statistics, split selection and tables."""


rule score_predictions:
    input:
        **store_files(),
        predictions=regime_predictions(),
        split="results/{dataset}/splits/{regime}.csv",
        code=script_code("score_predictions"),
    output:
        **synergy_output(),
        metrics=regime_metrics(),
    log:
        "logs/score_predictions/{dataset}/{regime}.log",
    benchmark:
        "benchmarks/score_predictions/{dataset}/{regime}.tsv"
    priority: 30
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=score_mem_mb,
        runtime=score_runtime,
    params:
        models=[[init, rep] for init in INITS for rep in REPLICATES],
    script:
        "../workflow/scripts/score_predictions.py"


rule compute_statistics:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{regime}/{init}/rep{rep}.csv",
            regime=REGIMES,
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=script_code("compute_statistics"),
    output:
        per_image=expand(
            "results/{{dataset}}/stats/{regime}/per_image.csv", regime=REGIMES
        ),
        tests=expand("results/{{dataset}}/stats/{regime}/tests.csv", regime=REGIMES),
        normality=expand(
            "results/{{dataset}}/stats/{regime}/normality.csv", regime=REGIMES
        ),
    log:
        "logs/compute_statistics/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=statistics_mem_mb,
    params:
        stats=stats_settings(),
        regimes=REGIMES,
    script:
        "../workflow/scripts/compute_statistics.py"


checkpoint select_split:
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
    priority: 30
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
        test_fractions=test_fractions(),
    script:
        "../workflow/scripts/make_tables.py"
