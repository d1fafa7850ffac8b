"""Grad-CAM files, statistics and checkpoints → figure panels (PNG + PDF) for the report.

Each dataset's panels show its selected 80:20 split: the rules take every split's files as
inputs and the selection record says which one is drawn.
"""


rule plot_examples:
    input:
        selection="results/{dataset}/stats/split_selection.csv",
        images="results/{dataset}/cam/images.csv",
        cam_lmi="results/{dataset}/cam/lmi.npz",
        cam_tii="results/{dataset}/cam/tii.npz",
        splits=expand("results/{{dataset}}/splits/{regime}.csv", regime=SPLITS),
        **store_files(),
        code=script_code("plot_examples"),
    output:
        **figure_files("segmentation", "Examples and Grad-CAM", "Fig 2-5 (i)"),
        **figure_files("gradcam", "Examples and Grad-CAM", "Fig 2-5 (ii)"),
        **figure_files("synergy", "Synergy", "Fig 6"),
    log:
        "logs/plot_examples/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
    script:
        "../workflow/scripts/plot_examples.py"


rule plot_distributions:
    input:
        selection="results/{dataset}/stats/split_selection.csv",
        per_image=expand(
            "results/{{dataset}}/stats/{regime}/per_image.csv", regime=SPLITS
        ),
        normality=expand(
            "results/{{dataset}}/stats/{regime}/normality.csv", regime=SPLITS
        ),
        tests=expand("results/{{dataset}}/stats/{regime}/tests.csv", regime=SPLITS),
        code=script_code("plot_distributions"),
    output:
        **figure_files("qq", "Distributions", "Fig S1"),
        **figure_files("distributions", "Distributions", "Fig S2-S4"),
    log:
        "logs/plot_distributions/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
    script:
        "../workflow/scripts/plot_distributions.py"


rule plot_training:
    input:
        models=expand(
            "results/{{dataset}}/models/{regime}/{init}/rep{rep}.pt",
            regime=REGIMES,
            init=INITS,
            rep=REPLICATES,
        ),
        code=script_code("plot_training"),
    output:
        **figure_files("training", "Training", "training curves", prefix=False),
    log:
        "logs/plot_training/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
        regimes=REGIMES,
    script:
        "../workflow/scripts/plot_training.py"


rule plot_depletion:
    input:
        selection="results/{dataset}/stats/split_selection.csv",
        tests=expand("results/{{dataset}}/stats/{regime}/tests.csv", regime=REGIMES),
        code=script_code("plot_depletion"),
    output:
        **figure_files("depletion", "Depletion", "Table 3 as a plot", prefix=False),
    log:
        "logs/plot_depletion/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
        test_fraction=config["splits"]["test_fraction"],
        depletions=DEPLETIONS,
    script:
        "../workflow/scripts/plot_depletion.py"
