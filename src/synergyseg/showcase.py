"""Which test images the figures show: chosen by rule from the statistics, never by hand.

Per clinical label, from the per-image replicate medians of a regime (``per_image.csv``), each
role picks one image by Δ = TII − LMI of a metric (Dice by default):

* ``tii_ahead`` — the largest Δ (where ImageNet transfer helps most),
* ``lmi_ahead`` — the smallest Δ (where training on medical images alone helps most),
* ``typical``   — Δ nearest the label's median Δ,
* ``tii_best`` / ``tii_worst`` / ``lmi_best`` / ``lmi_worst`` — that model's own extremes.

Labels where the metric is undefined for every image (Dice of slices without foreground) use
the fallback metric (specificity: how many false-positive pixels each model paints). Ties go to
the first slice id in sorted order, and an image chosen for two roles is shown once with both,
so the choice is deterministic and the CSV that records it reproduces the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

ROLES = ("tii_ahead", "lmi_ahead", "typical", "tii_best", "tii_worst", "lmi_best", "lmi_worst")
CHOICE_COLUMNS = ["slice_id", "label", "role", "metric", "lmi", "tii", "delta"]


@dataclass(frozen=True)
class ShowcaseSettings:
    """The ``figures.images`` config section."""

    metric: str = "dice"
    fallback_metric: str = "specificity"
    roles: tuple[str, ...] = ("tii_ahead", "lmi_ahead", "typical")

    def __post_init__(self):
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown or not self.roles:
            raise ValueError(f"figure image roles must be among {ROLES}, got {list(self.roles)}")
        object.__setattr__(self, "roles", tuple(self.roles))


def _pick(frame: pd.DataFrame, role: str) -> str:
    """Slice id for one role among images with a defined Δ (sorted by slice id for ties)."""
    frame = frame.sort_values("slice_id", kind="stable")
    if role == "typical":
        key = (frame["delta"] - frame["delta"].median()).abs()
        return frame.loc[key.idxmin(), "slice_id"]
    column = "delta" if role.endswith("_ahead") else role.split("_")[0]
    largest = role in ("tii_ahead", "tii_best", "lmi_best")
    index = frame[column].idxmax() if largest else frame[column].idxmin()
    return frame.loc[index, "slice_id"]


def _defined(per_image: pd.DataFrame, metric: str) -> pd.DataFrame:
    frame = per_image[per_image["metric"] == metric]
    return frame[frame["lmi"].notna() & frame["tii"].notna()]


def choose_images(per_image: pd.DataFrame, settings: ShowcaseSettings) -> pd.DataFrame:
    """One row per shown image: slice_id, label, role(s), metric, lmi, tii, delta."""
    per_image = per_image.astype({"slice_id": str, "label": str})
    rows = []
    for label in sorted(per_image["label"].unique()):
        of_label = per_image[per_image["label"] == label]
        metric = settings.metric
        candidates = _defined(of_label, metric)
        if candidates.empty:
            metric = settings.fallback_metric
            candidates = _defined(of_label, metric)
        if candidates.empty:
            continue  # nothing measurable to rank by; the label has no defined metric at all
        chosen: dict[str, list[str]] = {}
        for role in settings.roles:
            chosen.setdefault(_pick(candidates, role), []).append(role)
        indexed = candidates.set_index("slice_id")
        for slice_id, roles in chosen.items():
            values = indexed.loc[slice_id]
            rows.append(
                {
                    "slice_id": slice_id,
                    "label": label,
                    "role": "+".join(roles),
                    "metric": metric,
                    "lmi": float(values["lmi"]),
                    "tii": float(values["tii"]),
                    "delta": float(values["tii"] - values["lmi"]),
                }
            )
    if not rows:
        raise ValueError("no test image has a defined metric to choose figure images by")
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def roles_of(choice: pd.DataFrame) -> Sequence[str]:
    """Human-readable role names for figure row titles."""
    names = {
        "tii_ahead": "TII ahead",
        "lmi_ahead": "LMI ahead",
        "typical": "typical",
        "tii_best": "TII best",
        "tii_worst": "TII worst",
        "lmi_best": "LMI best",
        "lmi_worst": "LMI worst",
    }
    return [", ".join(names[r] for r in role.split("+")) for role in choice["role"]]
