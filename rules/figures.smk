"""Grad-CAM files, statistics and checkpoints → every figure panel of a dataset (PNG + PDF).

One job per dataset draws them all (a figure takes a second; starting a job takes several).
Each dataset's panels show its selected 80:20 split: the rule takes every split's files as
inputs and the selection record says which one is drawn.
"""


rule plot_figures:
    input:
        **store_files(),
        selection="results/{dataset}/stats/split_selection.csv",
        images="results/{dataset}/cam/images.csv",
        cam_lmi="results/{dataset}/cam/lmi.npz",
        cam_tii="results/{dataset}/cam/tii.npz",
        splits=expand("results/{{dataset}}/splits/{regime}.csv", regime=SPLITS),
        per_image=expand(
            "results/{{dataset}}/stats/{regime}/per_image.csv", regime=SPLITS
        ),
        normality=expand(
            "results/{{dataset}}/stats/{regime}/normality.csv", regime=SPLITS
        ),
        tests=expand("results/{{dataset}}/stats/{regime}/tests.csv", regime=REGIMES),
        histories=expand(
            "results/{{dataset}}/models/{regime}/{init}/rep{rep}.history.csv",
            regime=REGIMES,
            init=INITS,
            rep=REPLICATES,
        ),
        code=script_code("plot_figures"),
    output:
        **figure_files("segmentation", "Examples and Grad-CAM", "Fig 2-5 (i)"),
        **figure_files("gradcam", "Examples and Grad-CAM", "Fig 2-5 (ii)"),
        **figure_files("synergy", "Synergy", "Fig 6"),
        **figure_files("qq", "Distributions", "Fig S1"),
        **figure_files("distributions", "Distributions", "Fig S2-S4"),
        **figure_files("training", "Training", "training curves"),
        **depletion_figure_files(),
    log:
        "logs/plot_figures/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
        max_labels=config["figures"]["max_labels"],
        regimes=REGIMES,
        depletions=DEPLETIONS,
        test_fraction=lambda wc: split_settings(wc)["test_fraction"],
    script:
        "../workflow/scripts/plot_figures.py"
