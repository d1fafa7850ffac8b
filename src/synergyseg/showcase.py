"""Which test images the figures show: chosen by rule from the statistics, never by hand.

Per clinical label, from the per-image replicate medians of a regime (``per_image.csv``), each
role picks one image by Δ = TII − LMI of a metric (Dice by default):

* ``tii_ahead`` — the largest Δ (where ImageNet transfer helps most),
* ``lmi_ahead`` — the smallest Δ (where training on medical images alone helps most),
* ``typical``   — the image at the (lower) median of Δ,
* ``tii_best`` / ``tii_worst`` / ``lmi_best`` / ``lmi_worst`` — that model's own extremes.

Labels where the metric is undefined for every image (Dice of slices without foreground) use
the fallback metric (specificity: how many false-positive pixels each model paints). Ties go to
the first slice id in sorted order, and an image chosen for two roles is shown once with both,
so the choice is deterministic and the CSV that records it reproduces the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

log = logging.getLogger(__name__)

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
    """Slice id for one role among images with a defined Δ.

    Values are compared after rounding to 9 decimals, so differences that are equal in exact
    arithmetic tie, and ties go to the first slice id in sorted order. ``typical`` is the
    lower median of Δ: the image at position (n − 1) // 2 in Δ order.
    """
    column = "delta" if role in ("typical", "tii_ahead", "lmi_ahead") else role.split("_")[0]
    ranked = frame.assign(_key=frame[column].round(9)).sort_values(
        ["_key", "slice_id"], kind="stable"
    )
    if role == "typical":
        return ranked["slice_id"].iloc[(len(ranked) - 1) // 2]
    if role in ("tii_ahead", "tii_best", "lmi_best"):  # the largest value, first id on ties
        top = ranked["_key"].iloc[-1]
        return ranked.loc[ranked["_key"] == top, "slice_id"].iloc[0]
    return ranked["slice_id"].iloc[0]


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
        if candidates.empty:  # nothing measurable to rank by
            log.warning(
                "label %r: no image has a defined %s or %s; none shown",
                label,
                settings.metric,
                settings.fallback_metric,
            )
            continue
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
