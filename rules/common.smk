"""Helpers and input functions shared by every stage (the only place they live)."""

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The workflow and its jobs import the package from this checkout, so it runs without
# `pip install` too (e.g. with --sdm conda, whose environments hold only the dependencies).
SRC_DIR = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC_DIR))
_inherited = os.environ.get("PYTHONPATH")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC_DIR), _inherited])))

from synergyseg.config import TRAINING_OPTIONS, ConfigError, check_config

try:
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from err

DATASETS = sorted(config["datasets"])
SPLITS = [f"split{k}" for k in range(1, config["splits"]["n_splits"] + 1)]
DEPLETIONS = [f"train{round(f * 100)}" for f in config["depletion"]["train_fractions"]]
REGIMES = SPLITS + DEPLETIONS


def package_files(*names):
    """Package modules run by a rule, as its inputs, so that editing one re-runs only its rules.

    Paths are relative to the working directory so that moving a finished project folder
    does not look like a change of inputs.
    """
    return [os.path.relpath(SRC_DIR / "synergyseg" / name) for name in names]


def canonical(value):
    """Config slice with dict keys sorted, so reordering keys in a YAML file never looks like
    a change of params to Snakemake's rerun trigger."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_setting(key):
    """Input function: one key of this dataset's config section, in canonical form."""
    return lambda wildcards: canonical(dataset_config(wildcards)[key])


def split_settings(wildcards):
    """Top-level splits section with this dataset's overrides applied."""
    merged = {k: v for k, v in config["splits"].items() if k != "n_splits"}
    merged.update(dataset_config(wildcards).get("splits", {}))
    return canonical(merged)


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


def depletion_inputs(wildcards):
    """Depletion chain: the first regime starts from the split the statistics stage selects
    (all splits are inputs, the selection record says which); later ones from the one before.
    """
    percents = [round(f * 100) for f in config["depletion"]["train_fractions"]]
    position = percents.index(int(wildcards.percent))
    if position == 0:
        return {
            "selection": f"results/{wildcards.dataset}/stats/split_selection.csv",
            "splits": expand(
                "results/{dataset}/splits/{regime}.csv",
                dataset=wildcards.dataset,
                regime=SPLITS,
            ),
        }
    return {
        "previous": f"results/{wildcards.dataset}/splits/train{percents[position - 1]}.csv"
    }


def stats_settings():
    """The stats section as StatsSettings takes it (the seed is the workflow's)."""
    settings = {k: v for k, v in config["stats"].items() if k != "selection"}
    return canonical(settings | {"seed": config["seed"]})


INITS = config["train"]["inits"]
STUDY_TABLES = [
    "table1",
    "table2",
    "table_s3_s4",
    "mood_tests",
    "table_beyond",
    "normality",
    "synergy",
    "split_selection",
]
STUDY_TABLES += [f"table_s1_{dataset}" for dataset in DATASETS]
STUDY_TABLES += ["table3"] if DEPLETIONS else []
REPLICATES = list(range(1, config["train"]["replicates"] + 1))


def pretrained_weights(wildcards):
    """The encoder weights a TII job loads (none for LMI)."""
    if wildcards.init != "tii":
        return []
    source = config["pretrained"]["source"]
    if source == "imagenet":
        return "resources/weights/imagenet_vgg16.pth"
    if source == "pretrain":
        return "resources/weights/pretrained_encoder.pth"
    return config["pretrained"]["path"]


def training_options():
    """Only the `train` keys that change what a model learns (not replicates, threads, memory)."""
    return canonical({k: config["train"][k] for k in TRAINING_OPTIONS})


def kits_case_list(wildcards):
    """The KiTS19 cases to slice: the configured number for downloads, else all found."""
    ds = dataset_config(wildcards)
    if ds["format"] == "kits19" and ds["source"] == "download":
        return kits_cases(wildcards.dataset)
    return None


def study_table_reports():
    """The CSV of every statistics table, captioned for the report (Markdown copies are not)."""
    files = []
    for table in STUDY_TABLES:
        dataset = (
            table.removeprefix("table_s1_") if table.startswith("table_s1_") else None
        )
        csv = report(
            f"results/tables/{table}.csv",
            caption=f"../report/tables/{'table_s1' if dataset else table}.rst",
            category=dataset or "All datasets",
            subcategory="Tables",
            labels={"table": table},
        )
        files.append(csv)
    return files


def cam_settings():
    """The Grad-CAM settings that change the maps (not the batch size, a memory setting)."""
    return canonical(
        {k: v for k, v in config["figures"]["cam"].items() if k != "batch_size"}
    )


FIGURES = ["segmentation", "gradcam", "synergy", "qq", "distributions", "training"]
FIGURES += ["depletion"] if DEPLETIONS else []


def figure_code(*modules):
    """Package files behind a figure: its plotting modules and the shared style."""
    names = [f"figures/{m}" for m in (*modules, "style.py")]
    return package_files(*names, "selection.py", "io.py")


def figure_files(name, subcategory, label, prefix=True):
    """Named outputs of one figure: the PNG (in the report, captioned) and the PDF."""
    stem = f"results/figures/{{dataset}}/{name}"
    png = report(
        f"{stem}.png",
        caption=f"../report/figures/{name}.rst",
        category="{dataset}",
        subcategory=subcategory,
        labels={"figure": label},
    )
    keys = (f"{name}_png", f"{name}_pdf") if prefix else ("png", "pdf")
    return dict(zip(keys, (png, f"{stem}.pdf")))


def final_outputs():
    """Everything `rule all` asks for, from the config."""
    outputs = expand("results/{dataset}/slices/manifest.csv", dataset=DATASETS)
    outputs += expand(
        "results/{dataset}/splits/{regime}.csv", dataset=DATASETS, regime=REGIMES
    )
    outputs += ["results/tables/table_s2.csv", "results/tables/table_s2.md"]
    outputs += expand(
        "results/{dataset}/metrics/{regime}/{init}/rep{rep}.csv",
        dataset=DATASETS,
        regime=REGIMES,
        init=INITS,
        rep=REPLICATES,
    )
    if set(INITS) == {"tii", "lmi"}:  # the comparison needs both
        outputs += expand("results/tables/{table}.md", table=STUDY_TABLES)
        outputs += expand(
            "results/figures/{dataset}/{name}.{ext}",
            dataset=DATASETS,
            name=FIGURES,
            ext=["png", "pdf"],
        )
    return outputs
