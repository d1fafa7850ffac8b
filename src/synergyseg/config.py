"""Checks on the configuration: the schema, and what a JSON schema cannot express
(cross-field rules).

Every message names the offending key as a dotted config path (``datasets.skin.slices.width``)
so the user knows what to edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOWNLOADABLE = {"isic", "kits19"}
KITS19_CASES = 210  # case_00000 ... case_00209 have published segmentations
# The keys of the `train` section that change what a training job computes (TrainSpec's
# options). Only these reach the training rules' params, so editing `threads` or cluster
# resources never retrains a model (nor, with `fuse: false`, adding replicates; a fused job's
# outputs are all its replicates, so it retrains them all). Kept here so the Snakefile need
# not import torch.
TRAINING_OPTIONS = (
    "batch_size",
    "steps_per_epoch",
    "monitor_images",
    "augment",
    "precision",
    "channels_last",
)


def schema_problem(config: dict[str, Any], schema_path: str | Path) -> ConfigError | None:
    """The most relevant schema violation of ``config`` as a :class:`ConfigError` naming the
    key's dotted path, or None. (Snakemake's own ``validate`` reports the same violation
    after a dump of the whole schema, with the path in jsonschema's bracket form.)"""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    # JSON Schema counts 40.0 as an integer; Python code given it fails deep inside a job
    # (range(40.0), cv2.resize), so whole numbers must be written as such.
    strict = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    validator_class = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, type_checker=strict
    )
    validator = validator_class(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    path = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in known]
        if unknown:
            return ConfigError(".".join([*path, str(unknown[0])]), f"unknown key ({error.message})")
    return ConfigError(".".join(path) or "(top level)", error.message)


class ConfigError(ValueError):
    """A configuration value is impossible; the message starts with the key path."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"config key '{key}': {problem}")
        self.key = key


def check_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for the first cross-field inconsistency found."""
    for name, dataset in config["datasets"].items():
        key = f"datasets.{name}"
        source, fmt = dataset["source"], dataset["format"]
        if source == "download" and fmt not in DOWNLOADABLE:
            raise ConfigError(
                f"{key}.source",
                f"format {fmt!r} cannot be downloaded (only {sorted(DOWNLOADABLE)}); "
                "use source: local with path: pointing at the placed files",
            )
        if source == "download" and fmt == "kits19" and "cases" not in dataset:
            raise ConfigError(
                f"{key}.cases", f"a KiTS19 download needs cases: (1 to {KITS19_CASES})"
            )
        if source == "download" and fmt == "isic" and not dataset.get("parts"):
            raise ConfigError(f"{key}.parts", "an ISIC download needs the zip names to fetch")
        for option, needs in (("cases", ("kits19", "download")), ("parts", ("isic", "download"))):
            if option in dataset and (fmt, source) != needs:
                raise ConfigError(
                    f"{key}.{option}", f"is read for format {needs[0]} with source {needs[1]} only"
                )
        if "cases" in dataset and dataset["cases"] > KITS19_CASES:
            raise ConfigError(
                f"{key}.cases",
                f"is {dataset['cases']}, but KiTS19 labelled only {KITS19_CASES} cases",
            )
        if dataset.get("labels_csv") and fmt != "isic":
            raise ConfigError(
                f"{key}.labels_csv",
                "is read for format isic only (a custom CSV has its own label column)",
            )
        if source == "local" and not dataset.get("path"):
            raise ConfigError(
                f"{key}.path", "source: local needs a path (folder, or CSV for custom)"
            )
        if source == "phantom":
            if fmt == "custom":
                raise ConfigError(f"{key}.source", "there is no phantom for the custom format")
            if not dataset.get("phantom", {}).get("n"):
                raise ConfigError(
                    f"{key}.phantom.n", "source: phantom needs the number of images/cases"
                )
        if "slices" not in dataset:
            raise ConfigError(f"{key}.slices", "missing; give at least width and height")
        window = dataset["slices"].get("ct_window", [-512, 512])
        if not window[1] > window[0]:
            raise ConfigError(
                f"{key}.slices.ct_window", f"upper {window[1]} must exceed lower {window[0]}"
            )
        phantom = dataset.get("phantom", {})
        if phantom.get("min_side", 0) > phantom.get("max_side", float("inf")):
            raise ConfigError(f"{key}.phantom.min_side", "must not exceed max_side")
    pretrained, model = config["pretrained"], config["model"]
    if pretrained["source"] == "imagenet" and model["width"] != 1.0:
        raise ConfigError(
            "model.width",
            f"is {model['width']}, but ImageNet weights fit width 1.0 only; "
            "use pretrained.source: pretrain for narrow models",
        )
    if pretrained["source"] == "file" and not pretrained.get("path"):
        raise ConfigError("pretrained.path", "pretrained.source: file needs a path")
    splits, depletion = config["splits"], config["depletion"]
    fractions = depletion["train_fractions"]
    for fraction in fractions:
        if abs(fraction * 100 - round(fraction * 100)) > 1e-9:
            raise ConfigError(
                "depletion.train_fractions",
                f"{fraction} is not a whole percentage; regimes are named train<percent>",
            )
    test_fractions = [splits["test_fraction"]] + [
        d.get("splits", {}).get("test_fraction", splits["test_fraction"])
        for d in config["datasets"].values()
    ]
    top_train = 1 - max(test_fractions)
    if fractions and fractions[0] >= top_train:
        raise ConfigError(
            "depletion.train_fractions",
            f"must start below the training share of the splits ({top_train:g})",
        )
    if any(b >= a for a, b in zip(fractions, fractions[1:], strict=False)):
        raise ConfigError("depletion.train_fractions", f"must strictly decrease, got {fractions}")
    if fractions and len(config["train"]["inits"]) < 2:
        raise ConfigError(
            "train.inits",
            "the depletion regimes start from the split where TII and LMI differ most, so they "
            "need both inits; with one, set depletion.train_fractions: []",
        )
    fixed = config["stats"]["selection"]["fixed"]
    if fixed is not None and fixed > splits["n_splits"]:
        raise ConfigError(
            "stats.selection.fixed", f"is {fixed} but only {splits['n_splits']} splits exist"
        )
