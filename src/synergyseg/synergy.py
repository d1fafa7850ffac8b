"""Do TII and LMI combine? Metrics of the union and intersection of their masks (Fig 6).

Per init, the displayed mask is the intersection of the R replicate masks (eq. 2, P >= 0.5 in
every replicate). The union and intersection of the TII and LMI masks are scored per test image
like a model of their own; the same is done replicate by replicate (union of TII rep r and LMI
rep r), taking the median over replicates. AUROC needs scores, not masks, so only the
threshold metrics are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from synergyseg.errors import InputDataError
from synergyseg.io import read_binary_mask, read_predictions
from synergyseg.metrics import THRESHOLD, image_metrics
from synergyseg.splits import read_split

SYNERGY_METRICS = ("dice", "sensitivity", "specificity")
COMBINATIONS = ("lmi", "tii", "union", "intersection", "union_per_rep", "intersection_per_rep")


def replicate_intersection(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 2: the displayed mask of a model is the intersection of its R replicate masks."""
    return np.logical_and.reduce(np.stack(masks).astype(bool), axis=0)


def mask_metrics(masks: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    """Per-image metrics of binary masks (N, H, W), scored like a model's predictions."""
    return image_metrics(np.asarray(masks).astype(np.uint8) * np.uint8(255), truth)


def _binary_metrics(masks_pred: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    return mask_metrics(masks_pred, truth)[list(SYNERGY_METRICS)]


def synergy_table(predictions: Mapping[str, Sequence[str]], split_csv: str) -> pd.DataFrame:
    """Per test image and combination: dice, sensitivity, specificity (NaN where undefined)."""
    rows = read_split(split_csv, "test")
    truth = np.stack([read_binary_mask(p) for p in rows["mask"]]).astype(bool)
    binary = {}
    for init in ("lmi", "tii"):
        stack = []
        for path in predictions[init]:
            ids, probs = read_predictions(path)
            if list(map(str, ids)) != list(rows["slice_id"]):
                raise InputDataError(path, f"slice ids differ from the test side of {split_csv}")
            stack.append(probs >= THRESHOLD)
        binary[init] = np.stack(stack)  # (R, N, H, W)
    if binary["lmi"].shape[0] != binary["tii"].shape[0]:
        raise ValueError("TII and LMI need the same number of replicates")
    consensus = {init: replicate_intersection(binary[init]) for init in binary}
    tables = {
        "lmi": _binary_metrics(consensus["lmi"], truth),
        "tii": _binary_metrics(consensus["tii"], truth),
        "union": _binary_metrics(consensus["lmi"] | consensus["tii"], truth),
        "intersection": _binary_metrics(consensus["lmi"] & consensus["tii"], truth),
    }
    for name, combine in (
        ("union_per_rep", np.logical_or),
        ("intersection_per_rep", np.logical_and),
    ):
        per_rep = [
            _binary_metrics(combine(lmi, tii), truth)
            for lmi, tii in zip(binary["lmi"], binary["tii"], strict=True)
        ]
        tables[name] = pd.concat(per_rep).groupby(level=0).median()
    out = []
    for name, table in tables.items():
        table = table.copy()
        table.insert(0, "combination", name)
        table.insert(0, "label", rows["label"].to_numpy())
        table.insert(0, "slice_id", rows["slice_id"].to_numpy())
        out.append(table)
    return pd.concat(out, ignore_index=True)


def synergy_summary(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per combination and metric: median over images, and how often it beats both models."""
    wide = per_image.pivot(index="slice_id", columns="combination", values=list(SYNERGY_METRICS))
    rows = []
    for metric in SYNERGY_METRICS:
        best_single = wide[(metric, "lmi")].combine(wide[(metric, "tii")], max)
        for name in COMBINATIONS:
            values = wide[(metric, name)]
            defined = values.notna() & best_single.notna()
            rows.append(
                {
                    "metric": metric,
                    "combination": name,
                    "median": float(values.median()),
                    "n": int(values.notna().sum()),
                    "beats_both": int((values[defined] > best_single[defined]).sum())
                    if name not in ("lmi", "tii")
                    else np.nan,
                    "beats_both_percent": float(
                        100 * (values[defined] > best_single[defined]).mean()
                    )
                    if name not in ("lmi", "tii") and defined.any()
                    else np.nan,
                }
            )
    return pd.DataFrame(rows)
