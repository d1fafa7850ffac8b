"""P(class 1) for every test image of a regime, from all of the regime's models in one job.

The test images are read from the slice store once, in blocks, and every model predicts each
block while it is on the device: one job per regime instead of one per model, so the start-up,
the data loading and the device transfers are paid once for (typically) ten models. Memory is
bounded by the block size, never by the number of test images. Each model's maps go to its own
prediction file (:mod:`synergyseg.predictions`), compressed on worker threads while the device
computes the next block. Each model predicts in the arithmetic it was trained in (recorded in
its checkpoint: bf16 autocast or fp32).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import torch

from synergyseg.arithmetic import autocast_for  # the arithmetic each model was trained in
from synergyseg.atomic import remove_stale_temporaries
from synergyseg.checkpoints import load_checkpoint
from synergyseg.manifests import read_split
from synergyseg.memory import release_freed_memory
from synergyseg.model import VGGUNet, upsample_logits
from synergyseg.predictions import PredictionWriter
from synergyseg.preprocess import foreground_probability, to_network_input
from synergyseg.store import SliceStore, block_size, blocks, manifest_rows

log = logging.getLogger(__name__)
BLOCK_BYTES = 256 << 20  # uint8 images plus every model's maps of one block stay near this
# where a job's main thread waits, timed so that its log says what bounds it: the device, or the
# store and the compressor, which the device then waits for (each with how a report names it)
WAITS = {
    "reading": "reading the store",
    "device": "for the device",
    "compression": "for the compressor",
}


def predict_block(
    models: Sequence[VGGUNet],
    autocasts: Sequence,
    images: np.ndarray,
    batch_size: int,
    device: torch.device,
    maps: Sequence[torch.Tensor],
) -> None:
    """P(class 1) as uint8 of every model for one block of store rows (k, H, W, C), into the
    first k rows of ``maps[i]`` (uint8 tensors on ``device``). On a GPU this returns while the
    device still computes (once CUDA's queue of launches is full, for its tail).

    The block goes to the device once and each batch is normalised once for all models; the
    maps stay on the device until the block is done, so each model costs one copy back.
    """
    on_device = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    count, height, width = images.shape[:3]
    with torch.no_grad():
        for start in range(0, count, batch_size):
            x = to_network_input(on_device[start : start + batch_size], device)
            for model, autocast, out in zip(models, autocasts, maps, strict=True):
                with autocast:
                    logits = model(x)
                logits = upsample_logits(logits, (height, width))
                out[start : start + len(x)] = foreground_probability(logits)


def block_maps(
    models: Sequence[VGGUNet],
    autocasts: Sequence,
    images: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> list[np.ndarray]:
    """P(class 1) as uint8 (k, H, W) of every model for one block of store rows (k, H, W, C)."""
    count, height, width = images.shape[:3]
    maps = [torch.empty((count, height, width), dtype=torch.uint8, device=device) for _ in models]
    predict_block(models, autocasts, images, batch_size, device, maps)
    return [m.cpu().numpy() for m in maps]


def probabilities(
    model: VGGUNet, images: np.ndarray, batch_size: int, device: torch.device, meta=None
) -> np.ndarray:
    """P(class 1) as uint8 (N, H, W) of one model for uint8 store rows (N, H, W, C)."""
    model = model.to(device)
    return block_maps([model], [autocast_for(meta or {}, device)], images, batch_size, device)[0]


def predict_regime(
    checkpoints: Sequence[str | Path],
    split_csv: str | Path,
    store_dir: str | Path,
    outs: Sequence[str | Path],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    threads: int = 1,
    expected_model: dict | None = None,
) -> dict:
    """Write ``outs[i]``, the test-set maps of ``checkpoints[i]``; return size figures.
    ``expected_model`` (the config's ``model`` section) must match every checkpoint's."""
    if len(checkpoints) != len(outs) or not outs:
        raise ValueError("give one output file per checkpoint")
    for out in outs:  # a job killed outright leaves its hidden partial files (GB at paper size)
        remove_stale_temporaries(out)
    torch.set_num_threads(threads)
    device = torch.device(device)
    models, autocasts = [], []
    for path in checkpoints:
        model, meta = load_checkpoint(path, expected_model)
        models.append(model.to(device).to(memory_format=torch.channels_last))
        autocasts.append(autocast_for(meta, device))
    rows = read_split(split_csv, "test")
    store = SliceStore(store_dir)
    # one block: its uint8 images and every model's uint8 maps
    per_block = block_size(store.height * store.width * (store.channels + len(models)), BLOCK_BYTES)
    started, n = time.perf_counter(), len(rows)
    waited = dict.fromkeys(WAITS, 0.0)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        writers = [
            stack.enter_context(PredictionWriter(out, rows["slice_id"], store.height, store.width))
            for out in outs
        ]
        todo = [block_rows for _, block_rows in blocks(manifest_rows(rows), per_block)]
        _predict_blocks(models, autocasts, store, todo, writers, pool, batch_size, device, waited)
    seconds = time.perf_counter() - started
    sizes = [Path(out).stat().st_size for out in outs]
    figures = {
        "images": n,
        "models": len(models),
        "seconds": seconds,
        "images_per_s": n * len(models) / seconds if seconds else float("inf"),
        "bytes_per_image": float(np.mean(sizes)) / max(1, n),
        **{f"{what}_s": spent for what, spent in waited.items()},
    }
    log.info(
        "%d test images x %d models in %.1fs (%.1f model-images/s), %.0f bytes per map; "
        "the main thread spent %.1fs reading the store (on a GPU while the device computes), "
        "%.1fs on the %s (%s) and waited %.1fs for the compressor",
        n,
        len(models),
        seconds,
        figures["images_per_s"],
        figures["bytes_per_image"],
        waited["reading"],
        waited["device"],
        device.type,
        "launching, waiting, copying" if computes_apart(device) else "computing",
        waited["compression"],
    )
    return figures


def _predict_blocks(models, autocasts, store, todo, writers, pool, batch_size, device, waited):
    """Every block of ``todo`` (store rows) predicted by every model and handed to its writer,
    the device kept busy: on a GPU the next block is read while the device computes this one,
    and the compressor's threads write one block's maps while the next block is computed.

    Two blocks of maps live on the host and are reused: one is being written while the other
    takes the next block's maps. On a GPU they are pinned (copied at full speed and never
    faulted in again) and the device computes into maps of its own; the CPU computes into
    them directly.
    """
    copy_back = computes_apart(device)
    shape = (len(todo[0]) if todo else 0, store.height, store.width)
    # one allocation for both blocks: the pinned allocator rounds each up to a power of two
    pinned = device.type == "cuda"
    host = torch.empty((2, len(models), *shape), dtype=torch.uint8, pin_memory=pinned)
    targets = (
        [torch.empty(shape, dtype=torch.uint8, device=device) for _ in models]
        if copy_back
        else None
    )
    written: list[list[Future]] = [[], []]  # the writes of the maps in host[0] and host[1]
    latest: list[Future | None] = [None] * len(writers)  # each file's last write
    with _waiting(waited, "reading"):
        images = store.images(todo[0]) if todo else None
    for k, rows in enumerate(todo):
        count, maps = len(rows), host[k % 2]
        if not copy_back:  # the writes of two blocks ago must be done before these maps change
            with _waiting(waited, "compression"):
                _wait(written[k % 2])
        with _waiting(waited, "device"):
            predict_block(
                models, autocasts, images, batch_size, device, targets if copy_back else maps
            )
        if k + 1 < len(todo):  # on a GPU while the device computes this block
            with _waiting(waited, "reading"):
                images = store.images(todo[k + 1])
        if copy_back:
            with _waiting(waited, "device"):  # first the device: what follows is its idle time
                _synchronize(device)
            with _waiting(waited, "compression"):
                _wait(written[k % 2])
            with _waiting(waited, "device"):
                for mine, computed in zip(maps, targets, strict=True):
                    mine[:count].copy_(computed[:count])
        release_freed_memory()
        latest = written[k % 2] = [
            pool.submit(_write_after, before, writer, mine[:count].numpy())
            for before, writer, mine in zip(latest, writers, maps, strict=True)
        ]
    with _waiting(waited, "compression"):
        _wait(written[0] + written[1])


def computes_apart(device: torch.device) -> bool:
    """Whether ``device`` computes into memory of its own (a GPU), so that maps are copied
    back, rather than into the host's buffers (the CPU)."""
    return device.type != "cpu"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write_after(before: Future | None, writer: PredictionWriter, maps: np.ndarray) -> None:
    """Append ``maps`` once the file's previous block is in: a file takes its blocks in order,
    while the compressor's threads take the next block's files as soon as they are free."""
    if before is not None:
        before.result()
    writer.write(maps)


def _wait(futures: Sequence[Future]) -> None:
    for future in futures:
        future.result()


@contextmanager
def _waiting(waited: dict[str, float], what: str):
    """Add the block's seconds to ``waited[what]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        waited[what] += time.perf_counter() - started
