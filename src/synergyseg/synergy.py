"""Do TII and LMI combine? Metrics of the union and intersection of their masks (Fig 6).

Per init, the displayed mask is the intersection of the R replicate masks (eq. 2, P >= 0.5 in
every replicate). The union and intersection of the TII and LMI masks are scored per test image
like a model of their own; the same is done replicate by replicate (union of TII rep r and LMI
rep r), taking the median over replicates. AUROC needs scores, not masks, so only the
threshold metrics are reported.

A combination "beats both" models on an image when it scores above the better of the two
single models *built the same way*: the eq. 2 combinations against the eq. 2 masks, the
replicate-by-replicate ones against each model's median over its replicates (``lmi_per_rep``,
``tii_per_rep``). Against the eq. 2 masks, a single replicate's mask (which finds more than
the intersection of all R) would "beat both" even where the other model adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from synergyseg.masks import replicate_intersection
from synergyseg.metrics import binary_mask_metrics

SYNERGY_METRICS = ("dice", "sensitivity", "specificity")
COMBINATIONS = (
    "lmi",
    "tii",
    "union",
    "intersection",
    "lmi_per_rep",
    "tii_per_rep",
    "union_per_rep",
    "intersection_per_rep",
)
#: each combination's single models (None: it is one)
SINGLES = {
    "union": ("lmi", "tii"),
    "intersection": ("lmi", "tii"),
    "union_per_rep": ("lmi_per_rep", "tii_per_rep"),
    "intersection_per_rep": ("lmi_per_rep", "tii_per_rep"),
}


def _binary_metrics(masks_pred: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    return binary_mask_metrics(masks_pred, truth)[list(SYNERGY_METRICS)]


def synergy_block(
    binary: Mapping[str, np.ndarray],
    truth: np.ndarray,
    singles: Mapping[str, list[pd.DataFrame]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per combination, the metrics of a block of test images.

    ``binary[init]`` holds the R replicate masks of a block, (R, b, H, W) bool (P >= 0.5);
    ``truth`` the reference masks (b, H, W). Every value is per image, so scoring a test set
    block by block gives exactly the table of scoring it at once. ``singles[init]``, when
    given, are the replicates' own metric tables of the block (P >= 0.5 too, in the order of
    ``binary``), which the scoring job has already computed: they are not computed again.
    """
    if binary["lmi"].shape[0] != binary["tii"].shape[0]:
        raise ValueError("TII and LMI need the same number of replicates")
    consensus = {init: replicate_intersection(binary[init]) for init in ("lmi", "tii")}
    tables = {
        "lmi": _binary_metrics(consensus["lmi"], truth),
        "tii": _binary_metrics(consensus["tii"], truth),
        "union": _binary_metrics(consensus["lmi"] | consensus["tii"], truth),
        "intersection": _binary_metrics(consensus["lmi"] & consensus["tii"], truth),
    }
    for init in ("lmi", "tii"):
        per_rep = (
            [table[list(SYNERGY_METRICS)].reset_index(drop=True) for table in singles[init]]
            if singles is not None
            else [_binary_metrics(mask, truth) for mask in binary[init]]
        )
        tables[f"{init}_per_rep"] = pd.concat(per_rep).groupby(level=0).median()
    for name, combine in (
        ("union_per_rep", np.logical_or),
        ("intersection_per_rep", np.logical_and),
    ):
        per_rep = [
            _binary_metrics(combine(lmi, tii), truth)
            for lmi, tii in zip(binary["lmi"], binary["tii"], strict=True)
        ]
        tables[name] = pd.concat(per_rep).groupby(level=0).median()
    return tables


def synergy_frame(tables: Mapping[str, pd.DataFrame], rows: pd.DataFrame) -> pd.DataFrame:
    """Long table (slice_id, label, combination, metrics) from :func:`synergy_block` tables
    of the test rows ``rows``, in :data:`COMBINATIONS` order."""
    out = []
    for name in COMBINATIONS:
        table = tables[name].reset_index(drop=True).copy()
        table.insert(0, "combination", name)
        table.insert(0, "label", rows["label"].to_numpy())
        table.insert(0, "slice_id", rows["slice_id"].to_numpy())
        out.append(table)
    return pd.concat(out, ignore_index=True)


def synergy_summary(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per combination and metric: median over images, and on how many images it beats both
    single models built the same way (:data:`SINGLES`; empty for the single models)."""
    wide = per_image.pivot(index="slice_id", columns="combination", values=list(SYNERGY_METRICS))
    rows = []
    for metric in SYNERGY_METRICS:
        for name in COMBINATIONS:
            values = wide[(metric, name)]
            row = {
                "metric": metric,
                "combination": name,
                "median": float(values.median()),
                "n": int(values.notna().sum()),
                "beats_both": pd.NA,
                "beats_both_percent": np.nan,
            }
            if name in SINGLES:
                first, second = (wide[(metric, single)] for single in SINGLES[name])
                best_single = np.fmax(first, second).where(first.notna() & second.notna())
                defined = values.notna() & best_single.notna()
                beats = values[defined] > best_single[defined]
                row["beats_both"] = int(beats.sum())
                row["beats_both_percent"] = float(100 * beats.mean()) if defined.any() else np.nan
            rows.append(row)
    return pd.DataFrame(rows).astype({"beats_both": "Int64"})
