"""Score every model of a regime on its test images, and their TII/LMI combinations, in blocks.

One CPU job per regime reads the regime's prediction files in lockstep with the reference
masks from the slice store, a block of images at a time, and writes one metric table per
model plus the regime's synergy table (union and intersection of TII and LMI, Fig 6). Peak
memory is a block's maps for every model, whatever the number of test images. The synergy
combinations are binary masks made from maps already in memory and scored from their counts
alone, about a third of the job's CPU (``bench/synergy_scoring.py``), so every regime gets
them (the tables show the selected split's; the others show how much synergy varies).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from synergyseg.atomic import write_csv
from synergyseg.manifests import read_split
from synergyseg.masks import THRESHOLD
from synergyseg.memory import release_freed_memory
from synergyseg.metrics import COUNT_COLUMNS, METRIC_COLUMNS, image_metrics
from synergyseg.predictions import PredictionReader
from synergyseg.store import SliceStore, block_size, blocks, manifest_rows
from synergyseg.synergy import COMBINATIONS, SYNERGY_METRICS, synergy_block, synergy_frame

log = logging.getLogger(__name__)
BLOCK_BYTES = 256 << 20  # one block: every model's maps and their boolean masks


def score_regime(
    predictions: Mapping[tuple[str, int], str | Path],
    split_csv: str | Path,
    store_dir: str | Path,
    metric_outs: Mapping[tuple[str, int], str | Path],
    synergy_out: str | Path | None = None,
) -> None:
    """Write ``metric_outs[(init, rep)]`` for every prediction file, and ``synergy_out``
    (which needs both inits with the same replicates) when given."""
    rows = read_split(split_csv, "test")
    store = SliceStore(store_dir)
    readers = {key: PredictionReader(path) for key, path in predictions.items()}
    for reader in readers.values():
        reader.check_ids(rows["slice_id"], split_csv)
        if reader.shape[1:] != (store.height, store.width):
            raise ValueError(f"{reader.path}: maps {reader.shape[1:]} differ from the slices")
    inits = {init for init, _ in readers}
    if synergy_out is not None and inits != {"lmi", "tii"}:
        raise ValueError("the synergy table needs TII and LMI predictions")
    replicates = {init: [key for key in sorted(readers) if key[0] == init] for init in inits}
    pixels = store.height * store.width
    size = block_size(pixels * 3 * len(readers), BLOCK_BYTES)
    streams = {key: reader.blocks(size) for key, reader in readers.items()}
    # results are kept as numpy rows per block (a small DataFrame per block costs kilobytes)
    counts: dict = {key: [] for key in readers}
    values: dict = {key: [] for key in readers}
    synergy: dict = {name: [] for name in COMBINATIONS}
    for _, block_rows in blocks(manifest_rows(rows), size):
        truth = store.masks(block_rows).astype(bool)
        probs = {key: next(stream) for key, stream in streams.items()}
        model_tables = {}
        for key, block in probs.items():
            model_tables[key] = table = image_metrics(block, truth)
            counts[key].append(table[COUNT_COLUMNS].to_numpy())
            values[key].append(table[METRIC_COLUMNS].to_numpy())
        if synergy_out is not None:
            binary = {
                init: np.stack([probs[key] >= THRESHOLD for key in keys])
                for init, keys in replicates.items()
            }
            singles = {
                init: [model_tables[key] for key in keys] for init, keys in replicates.items()
            }
            for name, table in synergy_block(binary, truth, singles).items():
                synergy[name].append(table[list(SYNERGY_METRICS)].to_numpy())
        release_freed_memory()
    for key in readers:
        table = pd.concat(
            [
                pd.DataFrame(np.concatenate(counts[key]), columns=COUNT_COLUMNS),
                pd.DataFrame(np.concatenate(values[key]), columns=METRIC_COLUMNS),
            ],
            axis=1,
        )  # tp, fp, tn, fn, then the metrics: image_metrics' own order
        table.insert(0, "label", rows["label"].to_numpy())
        table.insert(0, "slice_id", rows["slice_id"].to_numpy())
        write_csv(table, metric_outs[key])
    if synergy_out is not None:
        tables = {
            name: pd.DataFrame(np.concatenate(parts), columns=list(SYNERGY_METRICS))
            for name, parts in synergy.items()
        }
        write_csv(synergy_frame(tables, rows), synergy_out)
    log.info("%d test images scored for %d models", len(rows), len(readers))
