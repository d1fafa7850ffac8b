"""The slice store and prediction files: round trips, headers, bounded reads, atomic writes."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from synergyseg.errors import InputDataError
from synergyseg.predictions import PredictionReader, PredictionWriter
from synergyseg.store import (
    SliceStore,
    StoreWriter,
    blocks,
    pack_masks,
    read_npy_shape,
    unpack_masks,
)


def test_store_round_trip_in_any_number_of_appends(tmp_path, rng):
    images = rng.integers(0, 256, (7, 5, 12, 3), dtype=np.uint8)
    masks = rng.integers(0, 2, (7, 5, 12), dtype=np.uint8)
    with StoreWriter(tmp_path, 5, 12, 3) as writer:
        assert writer.append(images[:3], masks[:3]) == range(0, 3)
        assert writer.append(images[3:], masks[3:]) == range(3, 7)
    store = SliceStore(tmp_path)
    assert (len(store), store.height, store.width, store.channels) == (7, 5, 12, 3)
    assert np.array_equal(store.images([6, 0, 6]), images[[6, 0, 6]])
    assert np.array_equal(store.masks(range(7)), masks)
    # plain numpy reads the files too: they are ordinary .npy files, masks packed along W
    assert np.array_equal(np.load(tmp_path / "images.npy"), images)
    assert np.load(tmp_path / "masks.npy").shape == (7, 5, 2)
    assert read_npy_shape(tmp_path / "images.npy") == (7, 5, 12, 3)
    with pytest.raises(InputDataError, match="has 7 rows; asked for row 7"):
        store.images([7])


def test_gray_slices_and_a_width_that_is_not_a_multiple_of_8(tmp_path, rng):
    masks = rng.integers(0, 2, (4, 3, 13), dtype=np.uint8)
    assert np.array_equal(unpack_masks(pack_masks(masks), 13), masks)
    with StoreWriter(tmp_path, 3, 13, 1) as writer:
        writer.append(rng.integers(0, 256, (4, 3, 13), dtype=np.uint8), masks)
    assert np.array_equal(SliceStore(tmp_path).masks([3, 1]), masks[[3, 1]])


def test_a_failed_store_leaves_nothing_that_looks_finished(tmp_path, rng):
    with pytest.raises(RuntimeError), StoreWriter(tmp_path, 4, 8, 1) as writer:
        writer.append(np.zeros((2, 4, 8), np.uint8), np.zeros((2, 4, 8), np.uint8))
        raise RuntimeError("killed while slicing")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="do not fit a store"), StoreWriter(tmp_path, 4, 8, 1) as w:
        w.append(np.zeros((2, 4, 9), np.uint8), np.zeros((2, 4, 9), np.uint8))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputDataError, match="is not a readable slice store"):
        SliceStore(tmp_path)


def test_blocks_cover_every_row_once_in_order():
    rows = np.array([5, 1, 9, 2, 7])
    parts = list(blocks(rows, 2))
    assert [r.tolist() for _, r in parts] == [[5, 1], [9, 2], [7]]
    assert [(s.start, s.stop) for s, _ in parts] == [(0, 2), (2, 4), (4, 5)]


def test_prediction_file_streams_blocks_and_is_an_ordinary_npz(tmp_path, rng):
    probs = rng.integers(0, 256, (11, 6, 4), dtype=np.uint8)
    ids = [f"s{i:02d}" for i in range(11)]
    path = tmp_path / "rep1.npz"
    with PredictionWriter(path, ids, 6, 4) as writer:
        for start in range(0, 11, 3):
            writer.write(probs[start : start + 3])
    reader = PredictionReader(path)
    assert reader.slice_ids.tolist() == ids and reader.shape == (11, 6, 4)
    assert np.array_equal(np.concatenate(list(reader.blocks(4))), probs)
    assert [len(b) for b in reader.blocks(4)] == [4, 4, 3]
    with np.load(path) as data:  # what a user would do
        assert np.array_equal(data["probs"], probs) and data["slice_ids"].tolist() == ids
    assert np.array_equal(next(reader.blocks(len(ids))), probs)  # one block: the whole file
    with pytest.raises(InputDataError, match="slice ids differ from the test side of x.csv"):
        reader.check_ids(ids[::-1], "x.csv")


def test_an_incomplete_prediction_file_is_never_left_behind(tmp_path):
    path = tmp_path / "rep1.npz"
    with (
        pytest.raises(ValueError, match="3 of 5 maps written"),
        PredictionWriter(path, list("abcde"), 2, 2) as writer,
    ):
        writer.write(np.zeros((3, 2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(ValueError, match="does not fit"),
        PredictionWriter(path, list("ab"), 2, 2) as writer,
    ):
        writer.write(np.zeros((3, 2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "bad.npz").write_bytes(b"PK not really")
    with pytest.raises(InputDataError, match="bad.npz: is not a readable prediction file"):
        PredictionReader(tmp_path / "bad.npz")
    with zipfile.ZipFile(tmp_path / "old.npz", "w") as archive:
        archive.writestr("slice_ids.npy", b"")
    with pytest.raises(InputDataError, match="old.npz"):
        PredictionReader(tmp_path / "old.npz")


def test_a_prediction_file_that_does_not_fit_its_ids_or_is_damaged_is_named(tmp_path, rng):
    """Maps are scored by position: a file with more maps than ids, or stored column-major
    (as ``np.savez`` writes a Fortran-ordered array), would be scored silently against other
    slices or scrambled pixels; a damaged one used to fail with zlib's message alone."""
    ids = np.array([f"s{i:02d}" for i in range(11)])
    probs = rng.integers(0, 256, (14, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "more.npz", slice_ids=ids, probs=probs)
    with pytest.raises(InputDataError, match="more.npz: holds 14 maps for 11 slice ids"):
        PredictionReader(tmp_path / "more.npz")
    np.savez(tmp_path / "fortran.npz", slice_ids=ids, probs=np.asfortranarray(probs[:11]))
    with pytest.raises(InputDataError, match="fortran.npz: .*Fortran-ordered"):
        PredictionReader(tmp_path / "fortran.npz")

    smooth = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8)  # compresses
    path = tmp_path / "rep1.npz"
    with PredictionWriter(path, ids, 64, 64) as writer:
        writer.write(np.stack([smooth + k for k in range(11)]))
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("probs.npy")
    data = bytearray(path.read_bytes())
    data[member.header_offset + 60 + member.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = PredictionReader(path)  # the header still reads
    with pytest.raises(InputDataError, match="rep1.npz: is corrupt at map"):
        list(reader.blocks(4))


def test_each_model_predicts_into_its_own_file_in_test_side_order(tmp_path, rng, monkeypatch):
    """``predict_regime`` against a plain forward pass written out by hand: model i's maps
    in output i, in the manifest's test order (not the store's), across block boundaries
    (blocks of 3 test images here), each map round(255 · softmax) of the upsampled logits."""
    from synergyseg import predict
    from synergyseg.model import ModelSpec, VGGUNet

    n, height, width = 9, 32, 48
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    with StoreWriter(tmp_path / "store", height, width, 3) as writer:
        writer.append(images, np.zeros((n, height, width), np.uint8))
    order = [7, 2, 5, 0, 8, 3, 1]  # the test side, in an order of its own; rows 4, 6 train
    split = pd.DataFrame(
        {
            "slice_id": [f"s{row}" for row in order] + ["s4", "s6"],
            "row": order + [4, 6],
            "label": "a",
            "subset": ["test"] * len(order) + ["train"] * 2,
        }
    )
    split.to_csv(tmp_path / "split.csv", index=False)
    checkpoints, networks = [], []
    for k in range(3):
        torch.manual_seed(k)
        network = VGGUNet(ModelSpec("default", 0.125)).eval()
        meta = {"spec": {"model": {"variant": "default", "width": 0.125}}, "precision": "fp32"}
        torch.save({"state_dict": network.state_dict(), "meta": meta}, tmp_path / f"m{k}.pt")
        checkpoints.append(tmp_path / f"m{k}.pt")
        networks.append(network)
    per_image = height * width * (3 + len(checkpoints))
    monkeypatch.setattr(predict, "BLOCK_BYTES", 3 * per_image)  # blocks of 3 test images
    outs = [tmp_path / f"pred{k}.npz" for k in range(3)]
    stale = tmp_path / ".pred1.npz.k2j4x_9a.npz"  # left by a job killed outright while writing
    stale.write_bytes(b"half a file")
    predict.predict_regime(
        checkpoints, tmp_path / "split.csv", tmp_path / "store", outs, batch_size=2
    )

    assert not stale.exists()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (torch.from_numpy(images[order]).permute(0, 3, 1, 2).float() / 255 - mean) / std
    for network, out in zip(networks, outs, strict=True):
        with torch.no_grad():
            logits = torch.nn.functional.interpolate(
                network(x), size=(height, width), mode="bilinear", align_corners=False
            )
        expected = (torch.softmax(logits.double(), dim=1)[:, 1] * 255).numpy()
        with np.load(out) as data:
            assert data["slice_ids"].tolist() == [f"s{row}" for row in order]
            maps = data["probs"].astype(float)
        # one level at most, where float32 and float64 round a value near .5 differently
        assert np.abs(maps - np.round(expected)).max() <= 1
        assert np.mean(maps != np.round(expected)) < 1e-3


def test_a_predict_job_says_whether_the_device_or_the_compressor_held_it_up(
    tmp_path, rng, monkeypatch, caplog
):
    """The job times where its main thread waits. With a compressor slower than the device,
    the waits for compression add up to the compressor's time less what the device hid; with
    a slow device, the waits are the device's and the compressor hides behind it."""
    import logging
    import re
    import time

    from synergyseg import predict

    n, side = 6, 32
    checkpoints = narrow_models_on_a_test_side(tmp_path, rng, n, side, models=1)
    monkeypatch.setattr(predict, "BLOCK_BYTES", 2 * side * side * 4)  # three blocks of two
    args = (checkpoints, tmp_path / "split.csv", tmp_path / "store", [tmp_path / "p.npz"])

    def slowly(function, seconds):
        def wrapped(*a, **k):
            time.sleep(seconds)
            return function(*a, **k)

        return wrapped

    with monkeypatch.context() as patch:
        patch.setattr(PredictionWriter, "write", slowly(PredictionWriter.write, 0.2))
        with caplog.at_level(logging.INFO, logger="synergyseg.predict"):
            slow_compressor = predict.predict_regime(*args, batch_size=2)
    assert slow_compressor["compression_s"] >= 0.4  # three writes of 0.2 s, two partly hidden
    waits = sum(slow_compressor[f"{what}_s"] for what in predict.WAITS)
    assert 0 < slow_compressor["reading_s"] and waits <= slow_compressor["seconds"]
    assert re.search(r"waited 0\.[4-9]s for the compressor|waited [1-9]", caplog.text)

    with monkeypatch.context() as patch:
        patch.setattr(predict, "predict_block", slowly(predict.predict_block, 0.2))
        slow_device = predict.predict_regime(*args, batch_size=2)
    assert slow_device["device_s"] >= 0.6 > slow_device["compression_s"]
    with np.load(tmp_path / "p.npz") as data:  # timing changed nothing written
        assert data["probs"].shape == (n, side, side)


def test_the_compressor_takes_the_next_block_while_one_file_lags_and_files_stay_in_order(
    tmp_path, rng, monkeypatch
):
    """One file's first write waits. The other files' writes of the next block go ahead on
    the free threads instead of waiting for the whole block, and the slow file still takes
    its blocks in order: every file equals the one a single thread writes, whether the device
    computes into the host's maps or into its own."""
    import threading

    from synergyseg import predict

    n, side = 4, 32
    checkpoints = narrow_models_on_a_test_side(tmp_path, rng, n, side, models=3)
    monkeypatch.setattr(predict, "BLOCK_BYTES", side * side * 6)  # blocks of one image
    common = (checkpoints, tmp_path / "split.csv", tmp_path / "store")
    alone = [tmp_path / f"alone{k}.npz" for k in range(3)]
    predict.predict_regime(*common, alone, batch_size=1, threads=1)

    done, lock, write = [], threading.Lock(), PredictionWriter.write
    went_ahead = threading.Event()  # file 1's second block written while file 0's first waits

    def file0_waits_for_file1s_second_block(self, probs):
        name, block = self.path.name, self.written
        if name == "pred0.npz" and block == 0:
            went_ahead.wait(timeout=10)  # the old way never writes it: this times out
        write(self, probs)
        with lock:
            done.append((name, block))
        if (name, block) == ("pred1.npz", 1):
            went_ahead.set()

    monkeypatch.setattr(PredictionWriter, "write", file0_waits_for_file1s_second_block)
    # the CPU's way (computing into the host's maps) and a GPU's (maps of the device's own,
    # copied back after the next block is read), run here on the CPU
    for apart in (False, True):
        monkeypatch.setattr(predict, "computes_apart", lambda device, apart=apart: apart)
        done.clear()
        went_ahead.clear()
        outs = [tmp_path / f"pred{k}.npz" for k in range(3)]
        predict.predict_regime(*common, outs, batch_size=1, threads=3)
        assert done.index(("pred1.npz", 1)) < done.index(("pred0.npz", 0))  # it went ahead
        assert [b for name, b in done if name == "pred0.npz"] == list(range(n))  # in order
        for mine, reference in zip(outs, alone, strict=True):
            with np.load(mine) as ours, np.load(reference) as theirs:
                assert np.array_equal(ours["probs"], theirs["probs"])


def narrow_models_on_a_test_side(tmp_path, rng, n, side, models):
    """A store of ``n`` random RGB slices, a split with all of them on the test side, and
    ``models`` narrow fp32 checkpoints (seeded 0, 1, ...): a predict job's inputs."""
    from synergyseg.model import ModelSpec, VGGUNet

    with StoreWriter(tmp_path / "store", side, side, 3) as writer:
        images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
        writer.append(images, np.zeros((n, side, side), np.uint8))
    pd.DataFrame(
        {"slice_id": [f"s{i}" for i in range(n)], "row": range(n), "label": "a", "subset": "test"}
    ).to_csv(tmp_path / "split.csv", index=False)
    meta = {"spec": {"model": {"variant": "default", "width": 0.125}}, "precision": "fp32"}
    checkpoints = []
    for k in range(models):
        torch.manual_seed(k)
        state = VGGUNet(ModelSpec("default", 0.125)).state_dict()
        torch.save({"state_dict": state, "meta": meta}, tmp_path / f"m{k}.pt")
        checkpoints.append(tmp_path / f"m{k}.pt")
    return checkpoints
