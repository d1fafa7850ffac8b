"""Which test images the figures show: chosen by rule from the scores, never by hand.

Per clinical label, each role picks one image by Δ = TII − LMI of a metric (Dice by default)
of the masks the panels draw: each model's eq. 2 mask (the intersection of its replicates), as
scored in the regime's synergy table. (Ranking by the replicate medians instead would label a
row "TII ahead" above overlays where LMI's mask scores higher.)

* ``tii_ahead`` — the largest Δ, where it is positive (where ImageNet transfer helps most),
* ``lmi_ahead`` — the smallest Δ, where it is negative (where medical images alone help most),
* ``typical``   — the image at the (lower) median of Δ,
* ``tii_best`` / ``tii_worst`` / ``lmi_best`` / ``lmi_worst`` — that model's own extremes.

A label where no image puts TII ahead (or LMI) shows no image for that role, rather than one
whose caption would claim the opposite of its overlays. Labels where the metric is undefined
for every image (Dice of slices without foreground) use the fallback metric (specificity: how
many false-positive pixels each model paints). Ties go to the first slice id in sorted order,
and an image chosen for two roles is shown once with both, so the choice is deterministic and
the CSV that records it reproduces the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# the synergy table's metrics of each mask: what the panels' masks can be ranked by (AUROC
# needs the probability maps, which the panels do not show)
from synergyseg.synergy import SYNERGY_METRICS

log = logging.getLogger(__name__)

ROLES = ("tii_ahead", "lmi_ahead", "typical", "tii_best", "tii_worst", "lmi_best", "lmi_worst")
CHOICE_COLUMNS = ["slice_id", "label", "role", "metric", "lmi", "tii", "delta"]
#: the sign of Δ each directional role claims
CLAIMED_SIGN = {"tii_ahead": 1, "lmi_ahead": -1}


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
        for metric in (self.metric, self.fallback_metric):
            if metric not in SYNERGY_METRICS:
                raise ValueError(
                    f"figure images are ranked by one of {SYNERGY_METRICS}, not {metric}"
                )
        object.__setattr__(self, "roles", tuple(self.roles))


def displayed_mask_table(synergy: pd.DataFrame) -> pd.DataFrame:
    """Long table slice_id, label, metric, lmi, tii, delta from a regime's synergy table: the
    per-image scores of each model's eq. 2 mask (its ``lmi`` and ``tii`` rows)."""
    models = synergy[synergy["combination"].isin(["lmi", "tii"])]
    frames = []
    for metric in SYNERGY_METRICS:
        wide = models.pivot(index=["slice_id", "label"], columns="combination", values=metric)
        frame = wide.reindex(columns=["lmi", "tii"]).reset_index()
        frame.insert(2, "metric", metric)
        frame["delta"] = frame["tii"] - frame["lmi"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[
        ["slice_id", "label", "metric", "lmi", "tii", "delta"]
    ]


def _pick(frame: pd.DataFrame, role: str) -> str | None:
    """Slice id for one role among images with a defined Δ, or None where no image has the
    sign of Δ the role claims.

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
        key = ranked["_key"].iloc[-1]
        chosen = ranked.loc[ranked["_key"] == key, "slice_id"].iloc[0]
    else:
        key, chosen = ranked["_key"].iloc[0], ranked["slice_id"].iloc[0]
    if role in CLAIMED_SIGN and not key * CLAIMED_SIGN[role] > 0:
        return None
    return chosen


def labels_shown(per_image: pd.DataFrame, limit: int | None, what: str) -> list[str]:
    """The clinical labels a figure of ``per_image`` rows (several per image: one per model)
    shows: all of them, or the ``limit`` with most images (ties by name), in name order. A
    figure grows a row per label, and a dataset labelled by patient or free text would ask
    matplotlib for a canvas past its 2^16-pixel limit after hours of GPU work; the labels left
    out are logged."""
    labels = per_image.drop_duplicates("slice_id")["label"].astype(str)
    counts = labels.value_counts(dropna=False)
    ranked = sorted(counts.index, key=lambda label: (-counts[label], label))
    kept = ranked if limit is None else ranked[:limit]
    left_out = ranked[len(kept) :]
    if left_out:
        named = ", ".join(repr(label) for label in left_out)
        log.warning(
            "%s: %d of %d labels shown, those with most test images (figures.max_labels: "
            "%d); not shown: %s",
            what,
            len(kept),
            len(ranked),
            limit,
            named,
        )
    return sorted(kept)


def choose_from_synergy(
    synergy_csv: str | Path, settings: ShowcaseSettings, max_labels: int | None = None
) -> pd.DataFrame:
    """:func:`choose_images` from a regime's synergy table (rule choose_figure_images)."""
    synergy = pd.read_csv(synergy_csv, dtype={"slice_id": str, "label": str})
    return choose_images(displayed_mask_table(synergy), settings, max_labels)


def _defined(per_image: pd.DataFrame, metric: str) -> pd.DataFrame:
    frame = per_image[per_image["metric"] == metric]
    return frame[frame["lmi"].notna() & frame["tii"].notna()]


def choose_images(
    per_image: pd.DataFrame, settings: ShowcaseSettings, max_labels: int | None = None
) -> pd.DataFrame:
    """One row per shown image: slice_id, label, role(s), metric, lmi, tii, delta; for at
    most ``max_labels`` labels (:func:`labels_shown`)."""
    per_image = per_image.astype({"slice_id": str, "label": str})
    rows = []
    for label in labels_shown(per_image, max_labels, "image panels"):
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
            slice_id = _pick(candidates, role)
            if slice_id is None:
                log.info(
                    "label %r: no image with %s ahead by %s; none shown as %s",
                    label,
                    role.split("_")[0].upper(),
                    metric,
                    role,
                )
                continue
            chosen.setdefault(slice_id, []).append(role)
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
        advice = "" if "typical" in settings.roles else "; add 'typical' to figures.images.roles"
        raise ValueError(
            f"no test image fits the figure image roles {list(settings.roles)} (a defined "
            f"{settings.metric} or {settings.fallback_metric}, and for tii_ahead/lmi_ahead a "
            f"model ahead){advice}"
        )
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)
