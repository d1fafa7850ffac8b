"""The selected split's metrics → the test images to show → replicate-averaged Grad-CAM maps.

Only the split the statistics select is drawn, so these rules take every 80:20 split's files as
inputs and the selection record says which one they use: one job per dataset, no Grad-CAM that
no figure shows, and a DAG that is fully known before anything runs.
"""


rule choose_figure_images:
    input:
        selection="results/{dataset}/stats/split_selection.csv",
        metrics=expand(
            "results/{{dataset}}/metrics/{regime}/{init}/rep{rep}.csv",
            regime=SPLITS,
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=script_code("choose_figure_images"),
    output:
        "results/{dataset}/cam/images.csv",
    log:
        "logs/choose_figure_images/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=statistics_mem_mb,
    params:
        images=canonical(config["figures"]["images"]),
    script:
        "../workflow/scripts/choose_figure_images.py"


rule explain_images:
    input:
        **store_files(),
        selection="results/{dataset}/stats/split_selection.csv",
        images="results/{dataset}/cam/images.csv",
        splits=expand("results/{{dataset}}/splits/{regime}.csv", regime=SPLITS),
        models=expand(
            "results/{{dataset}}/models/{regime}/{init}/rep{rep}.pt",
            regime=SPLITS,
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=script_code("explain_images"),
    output:
        lmi="results/{dataset}/cam/lmi.npz",
        tii="results/{dataset}/cam/tii.npz",
    log:
        "logs/explain_images/{dataset}.log",
    benchmark:
        "benchmarks/explain_images/{dataset}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=explain_mem_mb,
        runtime=lambda wc, attempt: 30 * attempt,
        batch_size=config["figures"]["cam"]["batch_size"],  # memory only: not a param
    params:
        cam=cam_settings(),
    script:
        "../workflow/scripts/explain_images.py"
