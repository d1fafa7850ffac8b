"""Training: side-by-side models equal lone models, kill-and-resume equality, atomic outputs,
safe checkpoints, history, seeds, the data feed and the monitoring sample."""

from __future__ import annotations

import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from synergyseg.arithmetic import autocast_for
from synergyseg.checkpoints import load_checkpoint
from synergyseg.config import TRAINING_OPTIONS
from synergyseg.errors import InputDataError
from synergyseg.model import ModelSpec
from synergyseg.store import SliceStore, StoreWriter
from synergyseg.train import (
    SaveSchedule,
    TrainingDivergedError,
    TrainSpec,
    progress_path,
    resolve_precision,
    resume_key,
    resume_path,
    train_model,
    train_models,
)
from synergyseg.training_data import (
    TrainingData,
    epoch_batches,
    flip,
    monitor_positions,
    unpack_bits,
)

SPEC = TrainSpec(
    "skin",
    "split1",
    "lmi",
    1,
    seed=7,
    epochs=3,
    model=ModelSpec("default", 0.125),
    batch_size=4,
    monitor_images=4,
)


def variant(**changes) -> TrainSpec:
    return TrainSpec(**{**SPEC.as_dict(), "model": SPEC.model, **changes})


class Killed(Exception):
    """Stands in for SIGKILL right after an epoch's state was saved."""


def kill_after(epoch):
    def hook(done):
        if done == epoch:
            raise Killed

    return hook


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """Pretrained-style encoder weights for TII (a random VGG16 at the spec's width)."""
    from synergyseg.model import vgg16_features

    torch.manual_seed(0)
    features = vgg16_features(SPEC.model.width, 4)
    path = tmp_path_factory.mktemp("weights") / "encoder.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_models_trained_side_by_side_equal_models_trained_alone(
    tiny_split, tiny_store, encoder, tmp_path
):
    """The promise of a fused regime job, on the CPU bit for bit: same initialisation, same
    data order, same updates (with augmentation too)."""
    specs = [variant(init="tii", augment=True), variant(augment=True), variant(rep=2, augment=True)]
    together = [tmp_path / f"together{i}.pt" for i in range(3)]
    train_models(
        specs,
        tiny_split,
        tiny_store,
        together,
        [p.with_suffix(".csv") for p in together],
        weights=encoder,
    )
    for i, spec in enumerate(specs):
        alone = tmp_path / f"alone{i}.pt"
        train_model(spec, tiny_split, tiny_store, alone, alone.with_suffix(".csv"), weights=encoder)
        assert_same_weights(together[i], alone)
        assert (
            pd.read_csv(together[i].with_suffix(".csv"))["train_loss"].tolist()
            == pd.read_csv(alone.with_suffix(".csv"))["train_loss"].tolist()
        )


def test_killed_job_resumes_to_the_same_weights(tiny_split, tiny_store, tmp_path):
    specs = [SPEC, variant(rep=2)]
    straight = [tmp_path / "straight1.pt", tmp_path / "straight2.pt"]
    train_models(specs, tiny_split, tiny_store, straight, [p.with_suffix(".csv") for p in straight])

    resumed = [tmp_path / "resumed1.pt", tmp_path / "resumed2.pt"]
    histories = [p.with_suffix(".csv") for p in resumed]
    with pytest.raises(Killed):
        train_models(specs, tiny_split, tiny_store, resumed, histories, on_epoch_end=kill_after(2))
    assert not any(p.exists() for p in resumed)  # nothing that looks finished
    assert all(resume_path(p).is_file() for p in resumed)
    ran = []
    out = train_models(specs, tiny_split, tiny_store, resumed, histories, on_epoch_end=ran.append)
    assert ran == [3]  # only the epoch the killed job had not finished
    assert [h["epoch"] for h in out[0]] == [1, 2, 3]
    assert len(pd.read_csv(histories[1])) == 3
    assert not any(resume_path(p).exists() for p in resumed)
    for a, b in zip(straight, resumed, strict=True):
        assert_same_weights(a, b)


def test_a_job_killed_among_its_checkpoints_keeps_every_model_and_a_cut_state_retrains(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    """Killed while writing its checkpoints, a job keeps every resume file: Snakemake deletes
    the checkpoints already written, and those models must not train again. A resume file cut
    short (a crash of the file system) costs its epochs, not the job."""
    from synergyseg import train

    specs = [SPEC, variant(rep=2)]
    straight = [tmp_path / "straight1.pt", tmp_path / "straight2.pt"]
    train_models(specs, tiny_split, tiny_store, straight, [p.with_suffix(".csv") for p in straight])

    outs = [tmp_path / "rep1.pt", tmp_path / "rep2.pt"]
    histories = [p.with_suffix(".csv") for p in outs]
    write_checkpoint = train._write_checkpoint

    def dies_at_the_second(job, *args):
        if job.out == outs[1]:
            raise Killed
        write_checkpoint(job, *args)

    monkeypatch.setattr(train, "_write_checkpoint", dies_at_the_second)
    with pytest.raises(Killed):
        train_models(specs, tiny_split, tiny_store, outs, histories)
    monkeypatch.undo()
    assert outs[0].is_file() and all(resume_path(p).is_file() for p in outs)
    outs[0].unlink()  # what Snakemake does with the outputs of a failed job
    cut = resume_path(outs[1])
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    leftover = tmp_path / ".rep2.pt.k1ll3d_0.pt"  # what SIGKILL in the middle of a save leaves
    leftover.write_bytes(b"half a checkpoint")
    ran = []
    train_models(specs, tiny_split, tiny_store, outs, histories, on_epoch_end=ran.append)
    assert ran == [1, 2, 3]  # the second model from scratch; the first had nothing left to do
    for a, b in zip(straight, outs, strict=True):
        assert_same_weights(a, b)
    assert not any(resume_path(p).exists() for p in outs) and not leftover.exists()


def record_saves(monkeypatch) -> list[int]:
    """The epochs after which the training jobs of a test save their models' states."""
    from synergyseg import train

    saved_after = []
    save_states = train.save_states

    def recording(jobs):
        saved_after.extend(job.lane.next_epoch - 1 for job in jobs)
        return save_states(jobs)

    monkeypatch.setattr(train, "save_states", recording)
    return saved_after


def test_resume_states_are_saved_once_the_interval_has_passed_after_the_last_save():
    now = [100.0]
    schedule = SaveSchedule(60, clock=lambda: now[0])
    due = []
    for epoch_seconds in (25, 25, 25, 25, 25, 25):  # saved at 75 s, then 75 s after that
        now[0] += epoch_seconds
        due.append(schedule.due())
        if due[-1]:
            schedule.saved()
    assert due == [False, False, True, False, False, True]
    assert schedule.due(last_epoch=True)  # always after the last epoch
    assert SaveSchedule(0, clock=lambda: 0.0).due()  # 0: after every epoch
    with pytest.raises(ValueError, match="0 or more"):
        SaveSchedule(-1)


def test_a_job_killed_between_saves_resumes_from_the_last_save_to_the_same_weights(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    """Epochs of 25 s on a fake clock, saves every 40 s: after epochs 3 and 5 (the last). Killed
    after epoch 4, the job resumes from epoch 3's state and ends with the uninterrupted weights."""
    from synergyseg import train

    five = variant(epochs=5)
    straight = tmp_path / "straight.pt"
    train_model(five, tiny_split, tiny_store, straight, straight.with_suffix(".csv"))
    now = [0.0]
    monkeypatch.setattr(
        train, "SaveSchedule", lambda every_s: SaveSchedule(every_s, clock=lambda: now[0])
    )
    saved_after = record_saves(monkeypatch)

    def epoch_of_25_s(kill_at=None):
        def hook(done):
            now[0] += 25
            if done == kill_at:
                raise Killed

        return hook

    out, history = tmp_path / "rep1.pt", tmp_path / "rep1.history.csv"
    with pytest.raises(Killed):
        train_model(
            five,
            tiny_split,
            tiny_store,
            out,
            history,
            on_epoch_end=epoch_of_25_s(4),
            state_every_s=40,
        )
    assert saved_after == [3]
    assert torch.load(resume_path(out), weights_only=True)["epoch"] == 3
    assert len(pd.read_csv(progress_path(out))) == 4  # the progress runs ahead of the state
    ran = []

    def follow(done):
        ran.append(done)
        epoch_of_25_s()(done)

    train_model(five, tiny_split, tiny_store, out, history, on_epoch_end=follow, state_every_s=40)
    assert ran == [4, 5] and saved_after == [3, 5]
    assert pd.read_csv(history)["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert_same_weights(straight, out)


def test_with_saves_far_apart_a_killed_job_retrains_its_epochs_but_none_among_checkpoints(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    """A job whose interval has not passed keeps no state of its first epochs, so a kill
    costs them (and gives the same weights again); the state after the last epoch is always
    saved, so a job killed among its checkpoints retrains no model."""
    from synergyseg import train

    straight = tmp_path / "straight.pt"
    train_model(SPEC, tiny_split, tiny_store, straight, straight.with_suffix(".csv"))
    saved_after = record_saves(monkeypatch)
    out, history = tmp_path / "rep1.pt", tmp_path / "rep1.history.csv"
    hour = 3600.0
    with pytest.raises(Killed):
        train_model(
            SPEC,
            tiny_split,
            tiny_store,
            out,
            history,
            on_epoch_end=kill_after(2),
            state_every_s=hour,
        )
    assert saved_after == [] and not resume_path(out).exists()
    assert len(pd.read_csv(progress_path(out))) == 2  # the epochs are still followed

    write_checkpoint = train._write_checkpoint

    def dies(*args):
        raise Killed

    monkeypatch.setattr(train, "_write_checkpoint", dies)
    ran = []
    with pytest.raises(Killed):
        train_model(
            SPEC, tiny_split, tiny_store, out, history, on_epoch_end=ran.append, state_every_s=hour
        )
    assert ran == [1, 2, 3] and saved_after == [3]  # from scratch; saved after the last epoch
    monkeypatch.setattr(train, "_write_checkpoint", write_checkpoint)
    ran.clear()
    train_model(
        SPEC, tiny_split, tiny_store, out, history, on_epoch_end=ran.append, state_every_s=hour
    )
    assert ran == [] and saved_after == [3]  # nothing left to train
    assert_same_weights(straight, out)
    assert not resume_path(out).exists()


def test_a_resume_file_the_file_system_cannot_read_now_fails_the_job_and_is_kept(
    tmp_path, monkeypatch
):
    """An I/O error (NFS, a failing disk) is not a damaged file: the job fails, and a retry
    finds the hours of training the file holds, instead of overwriting them from scratch."""
    from synergyseg import train, weights

    state = tmp_path / "rep1.resume.pt"
    state.write_bytes(b"hours of training")

    def unreadable(path, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(weights.torch, "load", unreadable)
    job = train.Job(SPEC, tmp_path / "rep1.pt", tmp_path / "h.csv", {})
    with pytest.raises(OSError, match="Input/output error"):
        train._resume(job)
    assert state.read_bytes() == b"hours of training"


def test_fixed_step_resume_states_carry_their_data_order():
    """A state saved under the per-epoch sampling of releases before 2026-11-27 is not
    continued in the stream order; full-pass states, whose order did not change, are."""
    stepped = variant(steps_per_epoch=4)
    assert resume_key(stepped, "s", None, "fp32")["data_order"] == "one stream across epochs"
    assert "data_order" not in resume_key(SPEC, "s", None, "fp32")


def test_checkpoint_metadata_and_history(tiny_split, tiny_store, tmp_path):
    out = tmp_path / "rep1.pt"
    train_model(SPEC, tiny_split, tiny_store, out, tmp_path / "rep1.epochs.csv")
    checkpoint = torch.load(out, weights_only=True)
    meta = checkpoint["meta"]
    assert meta["spec"] == SPEC.as_dict() and meta["job_seed"] == SPEC.job_seed
    assert set(meta["versions"]) >= {"torch", "torchvision", "synergyseg"}
    split = pd.read_csv(tiny_split)
    # the whole training side is trained on; monitoring only looks at 4 of its images
    assert meta["n_train"] == int((split.subset == "train").sum()) and meta["n_monitor"] == 4
    assert meta["precision"] == "fp32" and meta["device"] == "cpu"
    history = pd.read_csv(tmp_path / "rep1.epochs.csv")
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "monitor_loss",
        "images_per_s",
        "seconds",
    ]
    assert len(history) == 3 and history["monitor_loss"].notna().all()
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_stale_resume_state_is_ignored_when_settings_or_split_change(
    tiny_split, tiny_store, tmp_path
):
    out, history = tmp_path / "rep1.pt", tmp_path / "h.csv"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=kill_after(1))
    ran = []
    train_model(variant(epochs=2), tiny_split, tiny_store, out, history, on_epoch_end=ran.append)
    assert ran == [1, 2]

    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=kill_after(1))
    changed = tmp_path / "split1.csv"
    split = pd.read_csv(tiny_split)
    first_test = split.index[split.subset == "test"][0]
    split.loc[first_test, "subset"] = "train"  # a different split under the same settings
    split.to_csv(changed, index=False)
    ran = []
    train_model(SPEC, changed, tiny_store, out, history, on_epoch_end=ran.append)
    assert ran == [1, 2, 3]


def test_a_resume_state_is_not_continued_on_new_pixels_or_by_other_code(
    tiny_split, tiny_store, tmp_path
):
    """Re-slicing (another CT window) keeps the split file as it was, and a code fix re-runs
    the job through its code inputs: either way the half-trained state belongs to the old
    pixels or the old code and must not be continued."""
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    split = store / tiny_split.name
    out, history = tmp_path / "rep1.pt", tmp_path / "h.csv"
    with pytest.raises(Killed):
        train_model(SPEC, split, store, out, history, on_epoch_end=kill_after(1))
    old = SliceStore(store)
    images, masks = old.images(range(len(old))), old.masks(range(len(old)))
    with StoreWriter(store, old.height, old.width, old.channels) as writer:
        writer.append(255 - images, masks)  # the same slices in another window
    ran = []
    train_model(SPEC, split, store, out, history, on_epoch_end=ran.append)
    assert ran == [1, 2, 3]

    module = tmp_path / "lanes.py"
    module.write_text("STEP = 1\n")
    out = tmp_path / "rep2.pt"
    with pytest.raises(Killed):
        train_model(
            SPEC, split, store, out, history, on_epoch_end=kill_after(1), code_files=[module]
        )
    module.write_text("STEP = 2\n")  # a fix to the training code
    ran = []
    train_model(SPEC, split, store, out, history, on_epoch_end=ran.append, code_files=[module])
    assert ran == [1, 2, 3]
    with pytest.raises(Killed):
        train_model(
            SPEC, split, store, out, history, on_epoch_end=kill_after(1), code_files=[module]
        )
    ran = []  # the same pixels and code: continued
    train_model(SPEC, split, store, out, history, on_epoch_end=ran.append, code_files=[module])
    assert ran == [2, 3]


def test_a_killed_job_leaves_its_progress_but_no_history_that_looks_finished(
    tiny_split, tiny_store, tmp_path
):
    """The declared history is written with the checkpoint; the epochs so far go to a
    progress file beside it, to watch a job, which is gone once the model is done."""
    out, history = tmp_path / "rep1.pt", tmp_path / "rep1.history.csv"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=kill_after(2))
    assert not history.exists() and not out.exists()
    assert pd.read_csv(progress_path(out))["epoch"].tolist() == [1, 2]
    train_model(SPEC, tiny_split, tiny_store, out, history)
    assert pd.read_csv(history)["epoch"].tolist() == [1, 2, 3]
    assert not progress_path(out).exists() and not resume_path(out).exists()


def test_a_state_saved_on_a_gpu_resumes_on_the_cpu_to_the_same_weights(
    tiny_split, tiny_store, tmp_path
):
    """A GPU job's resume file carries the capturable Adadelta settings of the GPU; resumed on
    the CPU (a retry on another node, `device: auto`) the optimiser keeps the CPU's own."""
    straight = tmp_path / "straight.pt"
    train_model(SPEC, tiny_split, tiny_store, straight, tmp_path / "straight.csv")
    out, history = tmp_path / "rep1.pt", tmp_path / "h.csv"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=kill_after(2))
    state = torch.load(resume_path(out), weights_only=True)
    for group in state["optimiser"]["param_groups"]:
        group["capturable"] = True  # as Adadelta on a GPU saves it
    torch.save(state, resume_path(out))
    ran = []
    train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=ran.append)
    assert ran == [3]
    assert_same_weights(straight, out)


def test_a_resume_state_of_another_precision_is_not_continued(tiny_split, tiny_store, tmp_path):
    """`auto` resolves per device: a retry on a GPU without bf16 must not continue a bf16
    model in fp32 (nor the reverse); it starts the model again in its own precision."""
    out, history = tmp_path / "rep1.pt", tmp_path / "h.csv"
    with pytest.raises(Killed):
        train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=kill_after(2))
    state = torch.load(resume_path(out), weights_only=True)
    assert state["key"]["precision"] == "fp32"
    state["key"]["precision"] = "bf16"  # as a bf16 GPU would have saved it
    torch.save(state, resume_path(out))
    ran = []
    train_model(SPEC, tiny_split, tiny_store, out, history, on_epoch_end=ran.append)
    assert ran == [1, 2, 3]


def test_models_of_one_job_must_share_their_schedule(tiny_split, tiny_store, tmp_path):
    with pytest.raises(ValueError, match="must share \\['epochs'\\]"):
        train_models(
            [SPEC, variant(rep=2, epochs=4)],
            tiny_split,
            tiny_store,
            [tmp_path / "a.pt", tmp_path / "b.pt"],
            [tmp_path / "a.csv", tmp_path / "b.csv"],
        )


def test_training_options_are_exactly_the_spec_options():
    required = {"dataset", "regime", "init", "rep", "seed", "epochs", "model"}
    assert set(TRAINING_OPTIONS) == set(TrainSpec.__dataclass_fields__) - required


def test_tii_and_lmi_of_a_replicate_see_the_same_data_order():
    tii = variant(init="tii")
    assert tii.job_seed == SPEC.job_seed and variant(rep=2).job_seed != SPEC.job_seed
    a = epoch_batches(20, 4, None, SPEC.job_seed, 1)
    assert torch.equal(a.index, epoch_batches(20, 4, None, tii.job_seed, 1).index)
    assert sorted(a.index.flatten().tolist()) == list(range(20))  # a full pass
    ragged = epoch_batches(22, 4, None, 1, 1)  # full batches only; the 2 left over vary by epoch
    assert ragged.index.shape == (5, 4)
    assert set(ragged.index.flatten().tolist()) != set(
        epoch_batches(22, 4, None, 1, 2).index.flatten().tolist()
    )
    steps = epoch_batches(5, 2, 6, 1, 1)  # fixed steps cycle through the data
    assert steps.index.shape == (6, 2) and steps.flips is None
    assert epoch_batches(5, 2, 6, 1, 1, augment=True).flips.shape == (6, 2, 2)


def test_fixed_steps_walk_on_through_the_training_set_epoch_after_epoch():
    """As the Keras library's generator: epochs of 512 steps of 2 are consecutive stretches of
    one stream, and each pass of the stream over the training set holds every image once."""
    n, steps, batch = 7, 3, 2  # 6 images per epoch, so epochs straddle the passes
    stream = torch.cat([epoch_batches(n, batch, steps, 11, e).index.flatten() for e in range(1, 8)])
    for k in range(len(stream) // n):
        assert sorted(stream[k * n : (k + 1) * n].tolist()) == list(range(n)), k
    # the kidney's split: 20 epochs of 512 x 2 out of 36,339 slices see 20,480 different ones
    kidney = [epoch_batches(36_339, 2, 512, 11, e).index for e in range(1, 21)]
    assert len(set(torch.cat(kidney).flatten().tolist())) == 20 * 512 * 2


def test_monitoring_sample_is_fixed_seeded_and_inside_the_training_set():
    sample = monitor_positions(30, 5, 3)
    assert len(sample) == 5 and len(set(sample)) == 5 and sample.max() < 30
    assert np.array_equal(sample, monitor_positions(30, 5, 3))
    assert not np.array_equal(sample, monitor_positions(30, 5, 4))
    assert len(monitor_positions(3, 64, 3)) == 3 and len(monitor_positions(30, 0, 3)) == 0
    assert variant(init="tii", rep=3).monitor_seed == SPEC.monitor_seed  # one sample per regime


def test_resident_and_streamed_data_give_the_same_batches(tiny_split, tiny_store, rng):
    resident = TrainingData.from_split(tiny_store, tiny_split, "cpu", resident=True)
    streamed = TrainingData.from_split(tiny_store, tiny_split, "cpu", resident=False)
    index = torch.tensor([3, 0, 7, 3])
    flips = torch.tensor([[True, False], [False, True], [True, True], [False, False]])
    for a, b in zip(resident.batch(index, flips), streamed.batch(index, flips), strict=True):
        assert torch.equal(a, b)
    x, y = streamed.batch(index)
    assert x.shape == (4, 3, 64, 64) and x.is_contiguous(memory_format=torch.channels_last)
    store = SliceStore(tiny_store)
    rows = streamed.rows[index.numpy()]
    assert np.array_equal(y.numpy(), store.masks(rows))
    # flips move image and mask together: sample 0 horizontally, 1 vertically, 2 both
    xf, yf = streamed.batch(index, flips)
    assert torch.equal(yf[0], y[0].flip(-1)) and torch.equal(yf[1], y[1].flip(-2))
    assert torch.equal(xf[2], x[2].flip(-1).flip(-2)) and torch.equal(xf[3], x[3])
    packed = rng.integers(0, 256, (2, 3, 5), dtype=np.uint8)
    assert np.array_equal(
        unpack_bits(torch.from_numpy(packed), 37).numpy(),
        np.unpackbits(packed, axis=-1, count=37),
    )
    assert torch.equal(
        flip(torch.arange(4).view(1, 2, 2), torch.tensor([[True, True]]))[0],
        torch.tensor([[3, 2], [1, 0]]),
    )


def test_precision_on_the_cpu_is_fp32_and_bf16_is_refused():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="bf16 needs a GPU"):
        resolve_precision("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        variant(precision="fp16")


def test_later_stages_run_a_model_in_its_training_arithmetic():
    """Prediction and Grad-CAM: bf16 autocast only for a bf16 model on a GPU; an fp32 model on a
    GPU without TF32, as training ran it (PyTorch allows TF32 in fp32 convolutions by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        assert not autocast_for({"precision": "bf16"}, torch.device("cpu"))._enabled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no CUDA here: torch.autocast("cuda") warns
            autocast_for({"precision": "bf16"}, torch.device("cuda"))
            assert torch.backends.cudnn.allow_tf32  # neither the CPU nor bf16 changes it
            autocast_for({"precision": "fp32"}, torch.device("cuda"))
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"state_dict": Exploit(), "meta": {}}))
    with pytest.raises(
        InputDataError, match="evil.pt: refused: not loadable with weights_only=True"
    ):
        load_checkpoint(bad)


def test_training_error_leaves_no_checkpoint(tiny_split, tiny_store, tmp_path):
    with pytest.raises(InputDataError, match="weights file is missing"):
        train_model(
            variant(init="tii"),
            tiny_split,
            tiny_store,
            tmp_path / "x.pt",
            tmp_path / "h.csv",
            weights=tmp_path / "none.pth",
        )
    assert not (tmp_path / "x.pt").exists()


def diverge_in_epoch_2(split, store, tmp_path, monkeypatch, state_every_s) -> tuple[list, str]:
    """Two models trained together; the first one's loss turns NaN in epoch 2. Returns their
    outputs and the job's error message."""
    from synergyseg import lanes

    original = lanes.Lane.take_loss
    reads = []

    def take_loss(self):  # the first model's 3rd read
        value = original(self)
        reads.append(value)
        return float("nan") if len(reads) == 3 else value

    monkeypatch.setattr(lanes.Lane, "take_loss", take_loss)
    outs = [tmp_path / "first.pt", tmp_path / "second.pt"]
    histories = [p.with_suffix(".csv") for p in outs]
    with pytest.raises(TrainingDivergedError) as err:
        train_models(
            [SPEC, variant(rep=2)], split, store, outs, histories, state_every_s=state_every_s
        )
    assert not any(p.exists() for p in outs + histories)  # never a checkpoint or history
    assert torch.load(resume_path(outs[1]), weights_only=True)["epoch"] == 2  # kept at the stop
    assert str(outs[1]) not in str(err.value)
    return outs, str(err.value)


def test_a_diverging_loss_stops_the_job_keeps_the_last_good_state_and_no_checkpoint(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    outs, message = diverge_in_epoch_2(tiny_split, tiny_store, tmp_path, monkeypatch, 0)
    assert f"{outs[0]}: training loss is nan in epoch 2" in message
    assert f"state after epoch 1 is kept in {resume_path(outs[0])}" in message
    kept = torch.load(resume_path(outs[0]), weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    assert len(pd.read_csv(progress_path(outs[0]))) == 1  # ends at the last good epoch


def test_a_model_diverging_before_any_save_says_so_and_the_others_are_saved(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    outs, message = diverge_in_epoch_2(tiny_split, tiny_store, tmp_path, monkeypatch, 3600)
    assert (
        f"{outs[0]}: training loss is nan in epoch 2 (lmi replicate 1); no state of it" in message
    )
    assert not resume_path(outs[0]).exists()
