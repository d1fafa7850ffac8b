"""Train the VGG16-UNets of one regime (one job, many models) or one model: resumable, logged.

* Loss: pixel-wise 2-class cross-entropy on logits upsampled to the mask size.
* Optimiser: Adadelta with the Keras defaults (lr 1.0, rho 0.95, eps 1e-7).
* Seeds: from (seed, dataset, regime, replicate) only, so TII and LMI of one replicate see the
  same data order and the same decoder initialisation.
* An epoch is a full pass, or ``steps_per_epoch`` batches (the Keras library's 512 x 2).
* The whole training side is trained on. A fixed, seeded sample of ``monitor_images`` of its
  images is scored in eval mode after each epoch, to follow the loss with the running BatchNorm
  statistics used at test time; it costs one forward pass of those images per epoch.
* Precision: ``auto`` = bf16 autocast on GPUs with native bf16 (compute capability >= 8.0),
  else fp32; ``fp32`` = strict fp32 everywhere (TF32 off), as the paper trained; ``bf16``.
* The models of a job train side by side (:mod:`synergyseg.lanes`), each exactly as alone.
* Each model's full state (weights, optimiser, epoch, history) is saved atomically next to its
  output at the end of the first epoch ``state_every_s`` seconds after the last save (0: every
  epoch), and after the last epoch; a restarted job continues from there and, on the CPU, ends
  with exactly the weights of an uninterrupted run (the data order of epoch e depends only on
  the seed and e). A regime's ten full-width states are 1.4 GB: saved after every epoch (~20 s
  on an H100) they would keep the GPU waiting for a large share of the job.
* The final checkpoint is written atomically with its metadata and loads with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from synergyseg import __version__
from synergyseg.arithmetic import strict_fp32
from synergyseg.atomic import atomic_path, remove_stale_temporaries, write_csv
from synergyseg.checksums import sha256_of, sha256_text
from synergyseg.config import TRAINING_OPTIONS
from synergyseg.errors import InputDataError
from synergyseg.lanes import (
    Lane,
    adadelta,
    autocast_factory,
    load_optimiser_state,
    monitor_loss,
    run_epoch,
    state_dict_cpu,
)
from synergyseg.model import ModelSpec, build_model
from synergyseg.seeds import regime_seed
from synergyseg.store import IMAGES, MASKS
from synergyseg.training_data import TrainingData, epoch_batches, monitor_positions
from synergyseg.weights import load_state_dict, safe_load

log = logging.getLogger(__name__)
HISTORY_COLUMNS = ["epoch", "train_loss", "monitor_loss", "images_per_s", "seconds"]
PRECISIONS = ("auto", "bf16", "fp32")
LANE_BYTES = 512 << 20  # GPU memory one model takes beside the data (0.3 GB measured), rounded up


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines one trained model (and nothing else)."""

    dataset: str
    regime: str
    init: str
    rep: int
    seed: int
    epochs: int
    model: ModelSpec = field(default_factory=ModelSpec)
    batch_size: int = 2
    steps_per_epoch: int | None = None
    monitor_images: int = 64
    augment: bool = False
    precision: str = "auto"
    channels_last: bool = True

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def job_seed(self) -> int:
        return regime_seed(self.seed, self.dataset, self.regime, f"rep{self.rep}")

    @property
    def monitor_seed(self) -> int:
        """Shared by every model of a regime: they are monitored on the same images."""
        return regime_seed(self.seed, self.dataset, self.regime, "monitor")

    @classmethod
    def from_params(
        cls,
        train: dict,
        model: dict,
        epochs: int,
        seed: int,
        dataset: str,
        regime: str,
        init: str,
        rep: int,
    ) -> TrainSpec:
        """Build from the rule's params (config slices) and wildcards."""
        options = {k: train[k] for k in TRAINING_OPTIONS if k in train}
        return cls(
            dataset=dataset,
            regime=regime,
            init=init,
            rep=int(rep),
            seed=seed,
            epochs=epochs,
            model=ModelSpec(**model),
            **options,
        )

    def as_dict(self) -> dict:
        return asdict(self)


def library_versions() -> dict[str, str]:
    return {
        "synergyseg": __version__,
        "torch": str(torch.__version__),
        "torchvision": metadata.version("torchvision"),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def resolve_precision(setting: str, device: torch.device) -> str:
    """``bf16`` or ``fp32`` for this device; sets the TF32 switches for strict fp32."""
    if device.type != "cuda":
        if setting == "bf16":
            raise ValueError("precision bf16 needs a GPU; use auto or fp32 on the CPU")
        return "fp32"
    native_bf16 = torch.cuda.get_device_capability(device) >= (8, 0)
    if setting == "bf16" and not native_bf16:
        raise ValueError(
            f"precision bf16 needs compute capability 8.0 or newer; "
            f"{torch.cuda.get_device_name(device)} has "
            f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}: use auto or fp32"
        )
    resolved = "bf16" if setting == "bf16" or (setting == "auto" and native_bf16) else "fp32"
    if resolved == "fp32":  # the paper's arithmetic: no TF32 shortcuts in convolutions
        strict_fp32()
    return resolved


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".resume.pt")


def progress_path(out: str | Path) -> Path:
    """The history so far of an unfinished model, rewritten after every epoch to watch a job;
    the declared ``history.csv`` is written only with the checkpoint, so that a killed job
    leaves no output that looks finished."""
    out = Path(out)
    return out.with_name(out.stem + ".progress.csv")


def resume_key(
    spec: TrainSpec,
    split_sha256: str,
    weights_sha256: str | None,
    precision: str,
    store: dict | None = None,
    code_sha256: str | None = None,
) -> dict:
    """What a resume file must match: the settings, the exact inputs (split and weights, by
    their SHA-256, computed once per job: the ImageNet file is 528 MB; the slice store by
    :func:`store_identity`), the training code (``code_sha256``, :func:`code_digest`) and the
    arithmetic the device resolved (``auto`` is bf16 on one GPU and fp32 on an older one a
    retry may land on: a model is trained in one precision, start to end). Fixed-step epochs
    also carry the data order they follow: since 2026-11-27 one stream across epochs, so a
    state saved under the earlier per-epoch sampling is not continued in the new order."""
    key = {
        "spec": spec.as_dict(),
        "split_sha256": split_sha256,
        "weights_sha256": weights_sha256 if spec.init == "tii" else None,
        "precision": precision,
        "store": store,
        "code_sha256": code_sha256,
    }
    if spec.steps_per_epoch is not None:
        key["data_order"] = "one stream across epochs"
    return key


def store_identity(store_dir: str | Path) -> dict:
    """The slice store as a resume file must find it: each file's size, modification time and
    inode.

    Re-slicing (another CT window, a mended mask) publishes new files under the same split, so
    a state trained on the old pixels must not be continued on the new ones. Hashing the store
    at every job start would read ~12 GB for the kidney; a file renamed into place is a new
    inode with a new time (the inode also where a file system keeps times to the second only).
    A store copied elsewhere only costs the epochs of an unfinished job."""
    identity = {}
    for name in (IMAGES, MASKS):
        path = Path(store_dir) / name
        try:
            stat = path.stat()
        except OSError as err:
            problem = f"cannot be read ({err.strerror}): re-run make_slices"
            raise InputDataError(path, problem) from err
        identity[name] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    return identity


def code_digest(paths: Sequence[str | Path] | None) -> str | None:
    """One SHA-256 over the contents of the package modules a training job runs (the rule's
    code inputs), in the order given: a state trained by other code is not continued."""
    if not paths:
        return None
    return sha256_text("".join(sha256_of(path) for path in paths))


@dataclass
class Job:
    """One model's files and identity within a training job."""

    spec: TrainSpec
    out: Path
    history_csv: Path
    key: dict
    lane: Lane | None = None
    saved_epoch: int | None = None  # the epoch its resume file holds

    @property
    def state_file(self) -> Path:
        return resume_path(self.out)


class SaveSchedule:
    """When a job saves its models' resume states: at the end of the first epoch that finishes
    ``every_s`` seconds or more after the last save (or the start of training, once the models
    are built, compiled and captured). A killed job loses at most that much training and one
    epoch. (Each epoch's row of ``progress.csv`` is written regardless, so it may run ahead of
    the resume file.)"""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic):
        if every_s < 0:
            raise ValueError(f"the interval between saves must be 0 or more, got {every_s}")
        self.every_s, self.clock = every_s, clock
        self.last = clock()

    def due(self, last_epoch: bool = False) -> bool:
        """Whether to save at the end of this epoch: always after a job's last one (the end of
        its epochs, or a stop), so that a job killed among its checkpoints retrains no model
        and a stopped job keeps its healthy models' work."""
        return last_epoch or self.clock() - self.last >= self.every_s

    def saved(self) -> None:
        self.last = self.clock()


def save_states(jobs: Sequence[Job]) -> float:
    """Save each job's resume state (atomically, flushed to disk); returns the seconds taken,
    which at paper size are the GPU's idle time (on a GPU the copy to the host included)."""
    started = time.perf_counter()
    for job in jobs:
        lane = job.lane
        state = {
            "key": job.key,
            "epoch": lane.next_epoch - 1,
            "model": state_dict_cpu(lane.model),
            "optimiser": lane.optimiser.state_dict(),
            "history": lane.history,
        }
        with atomic_path(job.state_file, durable=True) as tmp:
            torch.save(state, tmp)
        job.saved_epoch = state["epoch"]
    return time.perf_counter() - started


def _resume(job: Job) -> None:
    """Load the job's resume file if it belongs to exactly these settings and inputs.

    A resume file that cannot be read (cut short by a crash of the file system, or not a
    state this code wrote) only costs the epochs it held: the job trains from scratch and
    overwrites it, rather than failing the same way on every retry. An I/O error while
    reading it (``safe_load`` lets it through) fails the job and keeps the file."""
    if not job.state_file.is_file():
        return
    try:
        state = safe_load(job.state_file)
    except InputDataError as err:
        log.warning("%s; starting from scratch", err)
        return
    if not isinstance(state, dict) or state.get("key") != job.key:
        log.warning("%s belongs to other settings or inputs; starting from scratch", job.state_file)
        return
    lane = job.lane
    try:
        lane.model.load_state_dict(state["model"])
        load_optimiser_state(lane.optimiser, state["optimiser"])
        lane.history, lane.next_epoch = list(state["history"]), int(state["epoch"]) + 1
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputDataError(
            job.state_file, f"resume state is damaged ({err}); delete it to train from scratch"
        ) from err
    job.saved_epoch = int(state["epoch"])
    log.info("%s: resuming after epoch %d", job.out, state["epoch"])


class TrainingDivergedError(RuntimeError):
    """A model's training loss became NaN or infinite: the job stops without a checkpoint."""


def _divergence_message(diverged: list[tuple[Job, float]], epoch: int) -> str:
    lines = []
    for job, loss in diverged:
        kept = (
            f"its state after epoch {job.saved_epoch} is kept in {job.state_file} for inspection"
            if job.saved_epoch is not None
            else "no state of it had been saved"
        )
        lines.append(
            f"{job.out}: training loss is {loss} in epoch {epoch} "
            f"({job.spec.init} replicate {job.spec.rep}); {kept}"
        )
    return (
        "training diverged, no checkpoint written:\n"
        + "\n".join(lines)
        + "\nA rerun resumes from the saved state (or epoch 1) and diverges the same way: check "
        "the images for extreme values, or train with `train.precision: fp32`."
    )


def _check_shared(specs: Sequence[TrainSpec]) -> None:
    """Models of one job train in lockstep on one copy of the data: only the init and the
    replicate may differ."""
    first = specs[0].as_dict()
    for spec in specs[1:]:
        differing = [
            k for k, v in spec.as_dict().items() if k not in ("init", "rep") and v != first[k]
        ]
        if differing:
            raise ValueError(f"models trained in one job must share {differing}")


def train_models(
    specs: Sequence[TrainSpec],
    split_csv: str | Path,
    store_dir: str | Path,
    outs: Sequence[str | Path],
    history_csvs: Sequence[str | Path],
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    threads: int = 1,
    cuda_graphs: bool = True,
    compile_model: bool = False,
    on_epoch_end: Callable[[int], None] | None = None,
    code_files: Sequence[str | Path] | None = None,
    state_every_s: float = 0.0,
) -> list[list[dict]]:
    """Train the models ``specs`` side by side; write each ``outs[i]`` and ``history_csvs[i]``.

    ``weights`` are the pretrained encoder weights of the TII models; ``code_files`` the
    modules the job runs, which key its resume files; ``state_every_s`` the training seconds
    between saves of the resume states (:class:`SaveSchedule`). Returns each history.
    """
    if not (len(specs) == len(outs) == len(history_csvs)) or not specs:
        raise ValueError("give one output and one history file per model spec")
    _check_shared(specs)
    torch.set_num_threads(threads)
    device = torch.device(device)
    common = specs[0]
    precision = resolve_precision(common.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    needs_weights = any(s.init == "tii" for s in specs)
    pretrained = load_state_dict(weights) if needs_weights and weights else None
    split_sha = sha256_of(split_csv)
    weights_sha = sha256_of(weights) if pretrained is not None else None
    store, code_sha = store_identity(store_dir), code_digest(code_files)
    jobs = [
        Job(s, Path(o), Path(h), resume_key(s, split_sha, weights_sha, precision, store, code_sha))
        for s, o, h in zip(specs, outs, history_csvs, strict=True)
    ]
    for job in jobs:  # a job killed while saving leaves ~150 MB per model behind, hidden
        for path in (job.out, job.state_file, job.history_csv, progress_path(job.out)):
            remove_stale_temporaries(path)
    for job in jobs:
        torch.manual_seed(job.spec.job_seed)  # the initialisation a model would get alone
        model = build_model(
            job.spec.model,
            job.spec.init,
            pretrained if job.spec.init == "tii" else None,
            source=str(weights),
        ).to(device)
        if common.channels_last:
            model = model.to(memory_format=torch.channels_last)
        job.lane = Lane(model, adadelta(model, device), device)
        _resume(job)

    # what the models need beside the data: 2.8 GB measured for ten at 512x512 on an H100
    reserve = len(jobs) * LANE_BYTES + (2 << 30)
    data = TrainingData.from_split(
        store_dir, split_csv, device, channels_last=common.channels_last, reserve_bytes=reserve
    )
    monitor = monitor_positions(len(data), common.monitor_images, common.monitor_seed)
    graphs = cuda_graphs and device.type == "cuda" and data.resident
    autocast = autocast_factory(device, precision, graphs)
    log.info(
        "%s/%s: %d model(s) on %s, %s%s, %d monitoring images",
        common.dataset,
        common.regime,
        len(jobs),
        torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        precision,
        ", CUDA graphs" if graphs else "",
        len(monitor),
    )
    active = [job for job in jobs if job.lane.next_epoch <= common.epochs]
    if compile_model and device.type == "cuda":
        for job in active:
            job.lane.compile()
    if graphs:
        try:
            for job in active:
                job.lane.capture(data, common.batch_size, common.augment, autocast)
        except RuntimeError as err:  # e.g. a driver that cannot capture: slower, same models
            log.warning("CUDA graph capture failed (%s); stepping eagerly instead", err)
            graphs = False
            autocast = autocast_factory(device, precision, graphs)
            for job in active:
                job.lane.graph = None
                job.lane.forward = job.lane.model  # compiled code may be what failed

    first = min((job.lane.next_epoch for job in active), default=common.epochs + 1)
    schedule = SaveSchedule(state_every_s)
    for epoch in range(first, common.epochs + 1):
        running = [job for job in active if job.lane.next_epoch == epoch]
        plans = [
            epoch_batches(
                len(data),
                common.batch_size,
                common.steps_per_epoch,
                job.spec.job_seed,
                epoch,
                common.augment,
            )
            for job in running
        ]
        started = time.perf_counter()
        seen_before = [job.lane.images_seen for job in running]
        run_epoch([job.lane for job in running], plans, data, autocast)
        losses = [job.lane.take_loss() for job in running]  # the epoch's one host sync
        seconds = time.perf_counter() - started
        diverged = []
        for job, plan, loss, before in zip(running, plans, losses, seen_before, strict=True):
            if not math.isfinite(loss):
                diverged.append((job, loss))
                continue  # never saved: its resume file keeps its last saved epoch, if any
            lane = job.lane
            seen = lane.images_seen - before
            row = {
                "epoch": epoch,
                "train_loss": loss / plan.index.shape[0],
                "monitor_loss": monitor_loss(lane, data, monitor, autocast),
                "images_per_s": seen / seconds,
                "seconds": seconds,
            }
            lane.history.append(row)
            lane.next_epoch = epoch + 1
            write_csv(pd.DataFrame(lane.history, columns=HISTORY_COLUMNS), progress_path(job.out))
        # when a model diverges the job stops: the others' work is kept
        healthy = [job for job in running if job.lane.next_epoch == epoch + 1]
        if healthy and schedule.due(last_epoch=epoch == common.epochs or bool(diverged)):
            seconds_saving = save_states(healthy)
            schedule.saved()
            log.info("resume states after epoch %d saved in %.1fs", epoch, seconds_saving)
        log.info(
            "epoch %d/%d  %d model(s)  train loss %s  %.1f images/s in all  %.1fs",
            epoch,
            common.epochs,
            len(running),
            " ".join(f"{loss / plans[0].index.shape[0]:.4f}" for loss in losses),
            sum(lane_plan.index.numel() for lane_plan in plans) / seconds,
            seconds,
        )
        if diverged:
            raise TrainingDivergedError(_divergence_message(diverged, epoch))
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    for job in jobs:
        _write_checkpoint(job, weights, device, precision, len(data), len(monitor), len(jobs))
    # only now: if the job dies among its checkpoints, Snakemake deletes them all, and the
    # resume files are what spares the finished models their training
    for job in jobs:
        job.state_file.unlink(missing_ok=True)
        progress_path(job.out).unlink(missing_ok=True)
    return [job.lane.history for job in jobs]


def _write_checkpoint(job: Job, weights, device, precision, n_train, n_monitor, n_models):
    lane = job.lane
    checkpoint = {
        "state_dict": state_dict_cpu(lane.model),
        "meta": {
            "spec": job.spec.as_dict(),
            "job_seed": job.spec.job_seed,
            "weights": str(weights) if weights and job.spec.init == "tii" else None,
            "versions": library_versions(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": precision,
            "history": lane.history,
            "n_train": n_train,
            "n_monitor": n_monitor,
            "models_in_job": n_models,
        },
    }
    with atomic_path(job.out, durable=True) as tmp:
        torch.save(checkpoint, tmp)
    # after the checkpoint, not before: a history of every epoch marks a finished model
    write_csv(pd.DataFrame(lane.history, columns=HISTORY_COLUMNS), job.history_csv)


def train_model(spec: TrainSpec, split_csv, store_dir, out, history_csv, **kwargs) -> list[dict]:
    """One model alone (the one-model-per-job mode, and the reference the lanes must match)."""
    return train_models([spec], split_csv, store_dir, [out], [history_csv], **kwargs)[0]
