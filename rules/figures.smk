"""Grad-CAM files, statistics and checkpoints → every figure panel of a dataset (PNG + PDF).

Two jobs per dataset draw them (a figure takes a second or two; starting a job takes a few):
the chosen images' panels, which wait for Grad-CAM, and the statistics panels, which do not.
Apart, a Grad-CAM setting redraws no statistics panel and a test setting no image panel, and
the two demo jobs of a dataset share the last minutes' cores instead of queueing as one.
Each dataset's panels show its selected 80:20 split. The image panels take that split's
manifest through the select_split checkpoint, as Grad-CAM does, so a new selection setting
that keeps the split redraws none of them; the statistics panels take every split's files and
the selection record says which one is drawn.
"""


rule plot_examples:
    input:
        **store_files(),
        images="results/{dataset}/cam/images.csv",
        cam_lmi="results/{dataset}/cam/lmi.npz",
        cam_tii="results/{dataset}/cam/tii.npz",
        split=in_selected_split("results/{dataset}/splits/{regime}.csv"),
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
        mem_mb=example_figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
    script:
        "../workflow/scripts/plot_examples.py"


rule plot_statistics:
    input:
        selection="results/{dataset}/stats/split_selection.csv",
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
        code=script_code("plot_statistics"),
    output:
        **figure_files("qq", "Distributions", "Fig S1"),
        **figure_files("distributions", "Distributions", "Fig S2-S4"),
        **figure_files("training", "Training", "training curves"),
        **depletion_figure_files(),
    log:
        "logs/plot_statistics/{dataset}.log",
    conda:
        "../envs/synergyseg.yaml"
    resources:
        mem_mb=statistics_figures_mem_mb,
    params:
        dpi=config["figures"]["dpi"],
        max_labels=config["figures"]["max_labels"],
        regimes=REGIMES,
        depletions=DEPLETIONS,
        test_fraction=lambda wc: split_settings(wc)["test_fraction"],
    script:
        "../workflow/scripts/plot_statistics.py"
