"""Helpers and input functions shared by every stage (the only place they live)."""

import errno
import functools
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow and its jobs import the package from this checkout, so it runs without
# `pip install` too (e.g. with --sdm conda, whose environments hold only the dependencies).
# The checkout is found from this file, not from workflow.basedir: used as a Snakemake `module`,
# the main Snakefile lives in the user's folder.
WORKFLOW_ROOT = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parent
SRC_DIR = WORKFLOW_ROOT / "src"
sys.path.insert(0, str(SRC_DIR))
_inherited = os.environ.get("PYTHONPATH")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC_DIR), _inherited])))

from synergyseg.codedeps import package_closure
from synergyseg.selection import selected_regime
from synergyseg.config import (
    TRAINING_OPTIONS,
    ConfigError,
    check_config,
    schema_problem,
)
from synergyseg import resources as need
from synergyseg.workflow import compile_cache_environment

# The schema first, naming a bad key by its config path (Snakemake's validate would report it
# after a dump of the whole schema); validate then fills in the defaults; then the cross-field
# rules the schema cannot express.
SCHEMA = WORKFLOW_ROOT / "config" / "schema.yaml"
try:
    if problem := schema_problem(config, SCHEMA):
        raise problem
    validate(config, str(SCHEMA), set_default=True)
    check_config(config)
    # torch.compile's kernels in the project, so that training jobs reuse what an earlier one
    # compiled, on any node (synergyseg.workflow); jobs inherit the environment
    os.environ.update(
        compile_cache_environment(config["train"]["compile_cache"], os.environ)
    )
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

DATASETS = sorted(config["datasets"])
SPLITS = [f"split{k}" for k in range(1, config["splits"]["n_splits"] + 1)]
DEPLETIONS = [f"train{round(f * 100)}" for f in config["depletion"]["train_fractions"]]
REGIMES = SPLITS + DEPLETIONS


def script_code(name):
    """The package modules a rule's script runs (its import closure, less infrastructure:
    synergyseg.codedeps), as inputs, so that editing one re-runs exactly the rules it can
    change. Paths are relative to the working directory so that moving a finished project
    folder does not look like a change of inputs.
    """
    script = WORKFLOW_ROOT / "workflow" / "scripts" / f"{name}.py"
    closure = package_closure(script, SRC_DIR / "synergyseg")
    return [os.path.relpath(path) for path in closure]


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


def test_fractions():
    """Each dataset's test share (split_settings): the selected split's training share in
    Table 3 and the depletion plot."""
    return {
        dataset: split_settings(SimpleNamespace(dataset=dataset))["test_fraction"]
        for dataset in DATASETS
    }


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


def store_files(dataset="{dataset}"):
    """The slice store of a dataset (images and bit-packed masks, see synergyseg.store)."""
    return {
        "store_images": f"results/{dataset}/slices/images.npy",
        "store_masks": f"results/{dataset}/slices/masks.npy",
    }


def slice_outputs():
    """make_slices' outputs: manifest, store, and the PNG copies when `png_slices` asks."""
    outputs = {"manifest": "results/{dataset}/slices/manifest.csv", **store_files()}
    if config["png_slices"]:
        outputs["png"] = directory("results/{dataset}/slices/png")
    return outputs


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
    return [f"resources/raw/{wildcards.dataset}/isic", labels_csv(wildcards)]


def labels_csv(wildcards):
    """Clinical-label table of ISIC-format data: the user's (which must exist),
    the fetched one, the phantom's, or an optional labels.csv beside local images."""
    ds = dataset_config(wildcards)
    if ds["format"] != "isic":
        return None
    if ds.get("labels_csv"):
        return ds["labels_csv"]
    if ds["source"] == "download":
        return f"resources/raw/{wildcards.dataset}/labels.csv"
    beside = f"{raw_root(wildcards)}/labels.csv"
    if ds["source"] == "local" and not os.path.isfile(beside):
        return None
    return beside


def depletion_inputs(wildcards):
    """Depletion chain: the first regime starts from the split the statistics stage selects,
    later ones from the regime before.

    select_split is a checkpoint and only the selected split is an input, so re-running the
    selection (new metric code, say) re-depletes and retrains nothing unless another split is
    selected; then the input is another file, and the chain is redone as it must be.
    """
    percents = [round(f * 100) for f in config["depletion"]["train_fractions"]]
    position = percents.index(int(wildcards.percent))
    if position > 0:
        return {
            "previous": f"results/{wildcards.dataset}/splits/train{percents[position - 1]}.csv"
        }
    regime = selected_split(wildcards)
    return {"previous": f"results/{wildcards.dataset}/splits/{regime}.csv"}


def selected_split(wildcards):
    """The 80:20 split (``split<k>``) the select_split checkpoint chose for this dataset."""
    selection = checkpoints.select_split.get(dataset=wildcards.dataset).output[0]
    return selected_regime(selection)


def in_selected_split(pattern):
    """Input function: ``pattern`` for the selected split only ({regime}, and every
    {init} × {rep} where it has them).

    As with the depletion chain, the selection record itself is no input: a new
    `stats.practical_difference` re-runs the selection, and a consumer (the image choice, the
    GPU Grad-CAM job) then re-runs only if another split is selected.
    """

    def inputs(wildcards):
        values = {
            "dataset": wildcards.dataset,
            "regime": selected_split(wildcards),
            "init": ["lmi", "tii"],
            "rep": REPLICATES,
        }
        used = {key: value for key, value in values.items() if f"{{{key}}}" in pattern}
        return expand(pattern, **used)

    return inputs


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
    if wildcards.get("init", "tii") != "tii":
        return []
    source = config["pretrained"]["source"]
    if source == "imagenet":
        return "resources/weights/imagenet_vgg16.pth"
    if source == "pretrain":
        return "resources/weights/pretrained_encoder.pth"
    return config["pretrained"]["path"]


def regime_weights(wildcards):
    """The encoder weights a regime's training job needs (its TII models load them)."""
    return pretrained_weights(wildcards) if "tii" in INITS else []


def _per_model(pattern):
    """`pattern` expanded over every init x replicate of a regime (wildcards kept)."""
    return expand(pattern, init=INITS, rep=REPLICATES, allow_missing=True)


def regime_checkpoints():
    return _per_model("results/{dataset}/models/{regime}/{init}/rep{rep}.pt")


def regime_histories():
    return _per_model("results/{dataset}/models/{regime}/{init}/rep{rep}.history.csv")


def regime_predictions():
    return _per_model("results/{dataset}/predictions/{regime}/{init}/rep{rep}.npz")


def regime_metrics():
    return _per_model("results/{dataset}/metrics/{regime}/{init}/rep{rep}.csv")


def synergy_output():
    """The regime's synergy table, when both inits are trained (it combines them)."""
    if set(INITS) == {"tii", "lmi"}:
        return {"synergy": "results/{dataset}/stats/{regime}/synergy.csv"}
    return {}


# --- resources: from the data, growing with each retry (synergyseg.resources) ---------------


def _existing(path):
    """mtime of an input that must exist; a missing one makes the resource "to be decided"
    (Snakemake evaluates it again once the file has been made)."""
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "not made yet", str(path)) from None


@functools.cache
def _split_sides(path, mtime):
    import pandas as pd

    subset = pd.read_csv(path, usecols=["subset"])["subset"]
    return int((subset == "train").sum()), int((subset == "test").sum())


def split_sides(path):
    """(training, test) image counts of a split manifest."""
    return _split_sides(str(path), _existing(path))


@functools.cache
def _store_shape(path, mtime):
    from synergyseg.store import read_npy_shape

    return read_npy_shape(path)


def store_shape(path):
    """(N, H, W, C) of a slice store's images.npy, from its header."""
    return _store_shape(str(path), _existing(path))


MODELS_PER_TRAINING_JOB = len(INITS) * len(REPLICATES) if config["train"]["fuse"] else 1
THROUGHPUT = need.THROUGHPUT | config["resources"]


def train_mem_mb(wildcards, attempt):
    return need.train_mem_mb(MODELS_PER_TRAINING_JOB, gpu=True, attempt=attempt)


def train_runtime(wildcards, input, attempt):
    n_train, _ = split_sides(input.split)
    _, height, width, _ = store_shape(input.store_images)
    steps = config["train"]["steps_per_epoch"]
    per_epoch = steps * config["train"]["batch_size"] if steps else n_train
    images = per_epoch * dataset_config(wildcards)["epochs"] * MODELS_PER_TRAINING_JOB
    return need.train_runtime(images, height * width, THROUGHPUT, attempt)


def predict_mem_mb(wildcards, input, attempt):
    _, height, width, channels = store_shape(input.store_images)
    return need.predict_mem_mb(
        len(INITS) * len(REPLICATES), height * width, channels, True, attempt
    )


def predict_runtime(wildcards, input, attempt):
    _, n_test = split_sides(input.split)
    _, height, width, _ = store_shape(input.store_images)
    images = n_test * len(INITS) * len(REPLICATES)
    return need.predict_runtime(images, height * width, THROUGHPUT, attempt)


def score_mem_mb(wildcards, input, attempt):
    _, n_test = split_sides(input.split)
    return need.score_mem_mb(n_test, len(INITS) * len(REPLICATES), attempt)


def score_runtime(wildcards, input, attempt):
    _, n_test = split_sides(input.split)
    _, height, width, _ = store_shape(input.store_images)
    return need.score_runtime(
        n_test * len(INITS) * len(REPLICATES), height * width, attempt
    )


def input_mb(input, *names):
    """Megabytes of the named inputs (what a table or figure job reads into pandas)."""
    paths = [
        path
        for name in names
        for path in ([input[name]] if isinstance(input[name], str) else input[name])
    ]
    for path in paths:
        _existing(path)
    return sum(os.path.getsize(path) for path in paths) / 2**20


def statistics_mem_mb(wildcards, input, attempt):
    return need.table_mem_mb(input_mb(input, "metrics"), attempt)


def showcase_mem_mb(wildcards, input, attempt):
    return need.table_mem_mb(input_mb(input, "synergy"), attempt)


def tables_mem_mb(wildcards, input, attempt):
    return need.table_mem_mb(input_mb(input, "stats"), attempt)


def example_figures_mem_mb(wildcards, input, attempt):
    return need.table_mem_mb(input_mb(input, "cam_lmi", "cam_tii"), attempt)


def statistics_figures_mem_mb(wildcards, input, attempt):
    tables = input_mb(input, "per_image", "tests", "normality")
    return need.table_mem_mb(tables, attempt)


def explain_mem_mb(wildcards, input, attempt):
    _, height, width, channels = store_shape(input.store_images)
    return need.predict_mem_mb(len(REPLICATES), height * width, channels, True, attempt)


def slices_mem_mb(wildcards, input, threads, attempt):
    """From the longest CT case (headers only) or the largest possible 2-D image."""
    from synergyseg.data.slicing import (
        largest_record_pixels,
    )  # SimpleITK: only when needed

    for path in input.raw:
        _existing(path)
    pixels = largest_record_pixels(
        dataset_config(wildcards)["format"],
        raw_root(wildcards),
        labels_csv(wildcards),
        kits_case_list(wildcards),
    )
    return need.slices_mem_mb(pixels, threads, attempt)


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


def depletion_figure_files():
    """The depletion plot (Table 3 as a picture), when there are depletion regimes."""
    if not DEPLETIONS:
        return {}
    return figure_files("depletion", "Depletion", "Table 3 as a plot")


def figure_files(name, subcategory, label):
    """Named outputs of one figure: the PNG (in the report, captioned) and the PDF."""
    stem = f"results/figures/{{dataset}}/{name}"
    png = report(
        f"{stem}.png",
        caption=f"../report/figures/{name}.rst",
        category="{dataset}",
        subcategory=subcategory,
        labels={"figure": label},
    )
    return {f"{name}_png": png, f"{name}_pdf": f"{stem}.pdf"}


def fetched_inputs():
    """What a run takes from outside - datasets, ISIC labels, ImageNet weights - for
    `rule fetch_data` (run it where there is internet before submitting to offline nodes).
    """
    inputs = [
        path
        for dataset in DATASETS
        for path in raw_inputs(SimpleNamespace(dataset=dataset))
        if path
    ]
    if config["pretrained"]["source"] == "imagenet":
        inputs.append("resources/weights/imagenet_vgg16.pth")
    return inputs


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
