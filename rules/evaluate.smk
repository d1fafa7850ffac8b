"""Predictions → per-image metrics (statistics and tables build on these)."""


rule compute_metrics:
    input:
        predictions="results/{dataset}/predictions/{regime}/{init}/rep{rep}.npz",
        split="results/{dataset}/splits/{regime}.csv",
        code=package_files("metrics.py", "io.py", "splits.py"),
    output:
        "results/{dataset}/metrics/{regime}/{init}/rep{rep}.csv",
    log:
        "logs/compute_metrics/{dataset}/{regime}/{init}/rep{rep}.log",
    benchmark:
        "benchmarks/compute_metrics/{dataset}/{regime}/{init}/rep{rep}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/compute_metrics.py"


rule regime_statistics:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{{regime}}/{init}/rep{rep}.csv",
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=package_files("stats.py", "selection.py", "io.py"),
    output:
        per_image="results/{dataset}/stats/{regime}/per_image.csv",
        tests="results/{dataset}/stats/{regime}/tests.csv",
        normality="results/{dataset}/stats/{regime}/normality.csv",
    log:
        "logs/regime_statistics/{dataset}/{regime}.log",
    conda:
        "../envs/synergyseg.yaml"
    params:
        stats=stats_settings(),
    script:
        "../workflow/scripts/regime_statistics.py"


rule synergy:
    input:
        lmi=expand(
            "results/{{dataset}}/predictions/{{regime}}/lmi/rep{rep}.npz",
            rep=REPLICATES,
        ),
        tii=expand(
            "results/{{dataset}}/predictions/{{regime}}/tii/rep{rep}.npz",
            rep=REPLICATES,
        ),
        split="results/{dataset}/splits/{regime}.csv",
        code=package_files("synergy.py", "metrics.py", "io.py"),
    output:
        "results/{dataset}/stats/{regime}/synergy.csv",
    log:
        "logs/synergy/{dataset}/{regime}.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/synergy.py"


rule select_split:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{regime}/{init}/rep{rep}.csv",
            regime=SPLITS,
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=package_files("selection.py", "io.py"),
    output:
        "results/{dataset}/stats/split_selection.csv",
    log:
        "logs/select_split/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
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
        code=package_files(
            "tables.py", "stats.py", "selection.py", "synergy.py", "io.py"
        ),
    output:
        csv=study_table_reports(),
        md=expand("results/tables/{table}.md", table=STUDY_TABLES),
    log:
        "logs/make_tables/make_tables.log",
    conda:
        "../envs/synergyseg.yaml"
    params:
        stats=stats_settings(),
        datasets=DATASETS,
        regimes=REGIMES,
        test_fraction=config["splits"]["test_fraction"],
    script:
        "../workflow/scripts/make_tables.py"
