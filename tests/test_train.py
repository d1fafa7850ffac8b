"""Training: kill-and-resume equality, atomic outputs, safe checkpoints, history, seeds."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from synergyseg.config import TRAINING_OPTIONS
from synergyseg.errors import InputDataError
from synergyseg.io import read_predictions
from synergyseg.model import ModelSpec
from synergyseg.predict import load_checkpoint, predict_split
from synergyseg.train import TrainSpec, epoch_batches, monitor_split, resume_path, train_model

SPEC = TrainSpec(
    "skin", "split1", "lmi", 1, seed=7, epochs=3, model=ModelSpec("default", 0.125), batch_size=4
)


class Killed(Exception):
    """Stands in for SIGKILL right after an epoch's state was saved."""


def kill_after(epoch):
    def hook(done):
        if done == epoch:
            raise Killed

    return hook


def record_epochs(into):
    return into.append


def test_killed_job_resumes_to_the_same_weights(tiny_split, tmp_path):
    straight = tmp_path / "straight.pt"
    train_model(SPEC, tiny_split, straight, tmp_path / "straight.csv")

    resumed = tmp_path / "resumed.pt"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, resumed, tmp_path / "resumed.csv", on_epoch_end=kill_after(2))
    assert not resumed.exists()  # nothing that looks finished
    assert resume_path(resumed).is_file()
    ran = []
    history = train_model(
        SPEC, tiny_split, resumed, tmp_path / "resumed.csv", on_epoch_end=record_epochs(ran)
    )
    assert ran == [3]  # only the epoch the killed job had not finished
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert len(pd.read_csv(tmp_path / "resumed.csv")) == 3
    assert not resume_path(resumed).exists()

    a = torch.load(straight, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_checkpoint_metadata_and_history(tiny_split, tmp_path):
    out = tmp_path / "rep1.pt"
    train_model(SPEC, tiny_split, out, tmp_path / "rep1.epochs.csv")
    checkpoint = torch.load(out, weights_only=True)
    meta = checkpoint["meta"]
    assert meta["spec"] == SPEC.as_dict() and meta["job_seed"] == SPEC.job_seed
    assert set(meta["versions"]) >= {"torch", "torchvision", "synergyseg"}
    assert len(meta["history"]) == 3 and meta["n_monitor"] == 2  # ceil(20 * 0.1)
    history = pd.read_csv(tmp_path / "rep1.epochs.csv")
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "monitor_loss",
        "images_per_s",
        "seconds",
    ]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_stale_resume_state_is_ignored_when_settings_or_split_change(tiny_split, tmp_path):
    out = tmp_path / "rep1.pt"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, out, tmp_path / "h.csv", on_epoch_end=kill_after(1))
    other = TrainSpec(**{**SPEC.as_dict(), "model": SPEC.model, "epochs": 2})
    ran = []
    train_model(other, tiny_split, out, tmp_path / "h.csv", on_epoch_end=record_epochs(ran))
    assert ran == [1, 2]

    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, out, tmp_path / "h.csv", on_epoch_end=kill_after(1))
    changed = tmp_path / "split1.csv"
    split = pd.read_csv(tiny_split)
    first_test = split.index[split.subset == "test"][0]
    split.loc[first_test, "subset"] = "train"  # a different split under the same settings
    split.to_csv(changed, index=False)
    ran = []
    train_model(SPEC, changed, out, tmp_path / "h.csv", on_epoch_end=record_epochs(ran))
    assert ran == [1, 2, 3]


def test_training_options_are_exactly_the_spec_options():
    required = {"dataset", "regime", "init", "rep", "seed", "epochs", "model"}
    assert set(TRAINING_OPTIONS) == set(TrainSpec.__dataclass_fields__) - required


def test_tii_and_lmi_of_a_replicate_see_the_same_data_order():
    tii = TrainSpec(**{**SPEC.as_dict(), "model": SPEC.model, "init": "tii"})
    assert tii.job_seed == SPEC.job_seed
    other_rep = TrainSpec(**{**SPEC.as_dict(), "model": SPEC.model, "rep": 2})
    assert other_rep.job_seed != SPEC.job_seed
    a = epoch_batches(20, 4, None, SPEC.job_seed, 1)
    assert [t.tolist() for t in a] == [
        t.tolist() for t in epoch_batches(20, 4, None, tii.job_seed, 1)
    ]
    assert sorted(torch.cat(a).tolist()) == list(range(20))  # a full pass
    ragged = epoch_batches(22, 4, None, 1, 1)  # full batches only; the 2 left over vary by epoch
    assert [len(b) for b in ragged] == [4] * 5
    assert set(torch.cat(ragged).tolist()) != set(
        torch.cat(epoch_batches(22, 4, None, 1, 2)).tolist()
    )
    steps = epoch_batches(5, 2, 6, 1, 1)  # fixed steps cycle through the data
    assert len(steps) == 6 and all(len(b) == 2 for b in steps)


def test_monitor_split_is_disjoint_and_seeded():
    train, monitor = monitor_split(30, 0.1, 3)
    assert len(monitor) == 3 and set(train).isdisjoint(monitor) and len(train) == 27
    assert np.array_equal(monitor, monitor_split(30, 0.1, 3)[1])
    assert len(monitor_split(30, 0.0, 3)[1]) == 0


def test_predictions_are_uint8_probabilities_for_every_test_image(tiny_split, tmp_path):
    out = tmp_path / "m.pt"
    train_model(SPEC, tiny_split, out, tmp_path / "h.csv")
    stats = predict_split(out, tiny_split, tmp_path / "p.npz", batch_size=3)
    ids, probs = read_predictions(tmp_path / "p.npz")
    split = pd.read_csv(tiny_split)
    assert ids.tolist() == split.loc[split.subset == "test", "slice_id"].tolist()
    assert probs.dtype == np.uint8 and probs.shape == (len(ids), 64, 64)
    assert stats["bytes_per_image"] == pytest.approx((tmp_path / "p.npz").stat().st_size / len(ids))
    model, meta = load_checkpoint(out)
    assert meta["spec"]["init"] == "lmi" and not model.training


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"state_dict": Exploit(), "meta": {}}))
    with pytest.raises(
        InputDataError, match="evil.pt: cannot be loaded safely with weights_only=True"
    ):
        load_checkpoint(bad)


def test_training_error_leaves_no_checkpoint(tiny_split, tmp_path):
    with pytest.raises(InputDataError, match="weights file is missing"):
        tii = TrainSpec(**{**SPEC.as_dict(), "model": SPEC.model, "init": "tii"})
        train_model(
            tii, tiny_split, tmp_path / "x.pt", tmp_path / "h.csv", weights=tmp_path / "none.pth"
        )
    assert not (tmp_path / "x.pt").exists()
