"""Checks on the configuration: the schema, and what a JSON schema cannot express
(cross-field rules).

Every message names the offending key as a dotted config path (``datasets.skin.slices.width``)
so the user knows what to edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOWNLOADABLE = {"isic", "kits19"}
# The keys of the `train` section that change what a training job computes (TrainSpec's
# options). Only these reach train_model's params, so editing `replicates`, `threads` or
# cluster resources never retrains a model. Kept here so the Snakefile need not import torch.
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
    validator = jsonschema.Draft202012Validator(schema)
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
    fixed = config["stats"]["selection"]["fixed"]
    if fixed is not None and fixed > splits["n_splits"]:
        raise ConfigError(
            "stats.selection.fixed", f"is {fixed} but only {splits['n_splits']} splits exist"
        )
