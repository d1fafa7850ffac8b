"""Helpers and input functions shared by every stage (the only place they live)."""

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError

from synergyseg.config import ConfigError, check_config

try:
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from err

# Jobs import the package from this checkout, also in --sdm conda environments.
SRC_DIR = Path(workflow.basedir) / "src"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(SRC_DIR), os.environ.get("PYTHONPATH", "")) if p
)

DATASETS = sorted(config["datasets"])
SPLITS = [f"split{k}" for k in range(1, config["splits"]["n_splits"] + 1)]
DEPLETIONS = [f"train{round(f * 100)}" for f in config["depletion"]["train_fractions"]]
REGIMES = SPLITS + DEPLETIONS


wildcard_constraints:
    dataset="|".join(DATASETS),
    index=r"\d+",
    percent=r"\d+",


def package_files(*names):
    """The package modules a rule runs, as inputs: editing one re-runs that rule only."""
    return [str(SRC_DIR / "synergyseg" / name) for name in names]


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def split_settings(wildcards):
    """Top-level splits section with this dataset's overrides applied."""
    merged = {k: v for k, v in config["splits"].items() if k != "n_splits"}
    merged.update(dataset_config(wildcards).get("splits", {}))
    return merged


def raw_root(wildcards):
    """Folder (or CSV, format custom) holding the raw data of a dataset."""
    ds = dataset_config(wildcards)
    if ds["source"] == "phantom":
        return f"resources/phantom/{wildcards.dataset}"
    if ds["source"] == "local":
        return ds["path"]
    if ds["format"] == "isic":
        return f"resources/raw/{wildcards.dataset}/isic"
    return f"resources/raw/{wildcards.dataset}"


def kits_cases(dataset):
    return [f"case_{i:05d}" for i in range(config["datasets"][dataset]["cases"])]


def raw_inputs(wildcards):
    """What must exist before slicing: the phantom, the downloads, or the checked local files."""
    ds = dataset_config(wildcards)
    if ds["source"] == "local":
        return [f"resources/checked/{wildcards.dataset}.csv"]
    if ds["source"] == "phantom":
        return [f"resources/phantom/{wildcards.dataset}"]
    if ds["format"] == "kits19":
        root = f"resources/raw/{wildcards.dataset}"
        return [
            f"{root}/{case}/{name}"
            for case in kits_cases(wildcards.dataset)
            for name in ("imaging.nii.gz", "segmentation.nii.gz")
        ]
    return [
        f"resources/raw/{wildcards.dataset}/isic",
        f"resources/raw/{wildcards.dataset}/labels.csv",
    ]


def labels_csv(wildcards):
    """Clinical-label table for ISIC-format data (optional for local folders)."""
    ds = dataset_config(wildcards)
    if ds["format"] != "isic":
        return None
    if ds["source"] == "download":
        return f"resources/raw/{wildcards.dataset}/labels.csv"
    return f"{raw_root(wildcards)}/labels.csv"


def previous_regime(wildcards):
    """Depletion chain: train60 comes from the base split, each later regime from the one before."""
    percents = [round(f * 100) for f in config["depletion"]["train_fractions"]]
    position = percents.index(int(wildcards.percent))
    if position == 0:
        base = config["depletion"]["base_split"]
        return f"results/{wildcards.dataset}/splits/split{base}.csv"
    return f"results/{wildcards.dataset}/splits/train{percents[position - 1]}.csv"


def final_outputs():
    """Everything `rule all` asks for, from the config."""
    outputs = expand("results/{dataset}/slices/manifest.csv", dataset=DATASETS)
    outputs += expand(
        "results/{dataset}/splits/{regime}.csv", dataset=DATASETS, regime=REGIMES
    )
    outputs += ["results/tables/table_s2.csv", "results/tables/table_s2.md"]
    return outputs
