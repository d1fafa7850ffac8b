"""Metrics of the 80:20 splits → the test images to show → replicate-averaged Grad-CAM maps."""


rule choose_figure_images:
    input:
        metrics=expand(
            "results/{{dataset}}/metrics/{{regime}}/{init}/rep{rep}.csv",
            init=["lmi", "tii"],
            rep=REPLICATES,
        ),
        code=package_files("showcase.py", "selection.py", "io.py"),
    output:
        "results/{dataset}/cam/{regime}/images.csv",
    log:
        "logs/choose_figure_images/{dataset}/{regime}.log",
    conda:
        "../envs/synergyseg.yaml"
    params:
        images=canonical(config["figures"]["images"]),
    script:
        "../workflow/scripts/choose_figure_images.py"


rule explain_images:
    input:
        models=expand(
            "results/{{dataset}}/models/{{regime}}/{{init}}/rep{rep}.pt",
            rep=REPLICATES,
        ),
        split="results/{dataset}/splits/{regime}.csv",
        images="results/{dataset}/cam/{regime}/images.csv",
        code=package_files(
            "cam.py",
            "synergy.py",
            "predict.py",
            "model.py",
            "samples.py",
            "preprocess.py",
            "gpu.py",
            "io.py",
        ),
    output:
        "results/{dataset}/cam/{regime}/{init}.npz",
    log:
        "logs/explain_images/{dataset}/{regime}/{init}.log",
    benchmark:
        "benchmarks/explain_images/{dataset}/{regime}/{init}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=config["train"]["mem_mb"],
        batch_size=config["figures"]["cam"]["batch_size"],  # memory only: not a param
    params:
        cam=cam_settings(),
    script:
        "../workflow/scripts/explain_images.py"
