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
