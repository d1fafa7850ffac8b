"""The selected split's eq. 2 masks → the test images to show → replicate-averaged Grad-CAM.

Only the split the statistics select is drawn: these rules' inputs are that split's files,
found through the select_split checkpoint (like the depletion chain's first manifest). One job
per dataset, no Grad-CAM that no figure shows, and a new selection setting that keeps the same
split re-runs neither the image choice nor the GPU job.
"""


rule choose_figure_images:
    input:
        synergy=in_selected_split("results/{dataset}/stats/{regime}/synergy.csv"),
        code=script_code("choose_figure_images"),
    output:
        "results/{dataset}/cam/images.csv",
    log:
        "logs/choose_figure_images/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=showcase_mem_mb,
    params:
        images=canonical(config["figures"]["images"]),
        max_labels=config["figures"]["max_labels"],
    script:
        "../workflow/scripts/choose_figure_images.py"


rule explain_images:
    input:
        **store_files(),
        images="results/{dataset}/cam/images.csv",
        split=in_selected_split("results/{dataset}/splits/{regime}.csv"),
        models=in_selected_split("results/{dataset}/models/{regime}/{init}/rep{rep}.pt"),
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
