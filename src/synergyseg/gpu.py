"""Claim one GPU per job on a shared workstation.

Snakemake counts ``gpu`` as a plain resource and never sets ``CUDA_VISIBLE_DEVICES``, so with
``--resources gpu=2`` two jobs would both land on GPU 0. Each GPU job therefore takes an
exclusive ``flock`` on one lock file per device and uses the first it gets. The kernel drops
the lock when the process ends, however it ends, so a killed job never leaves a device
blocked. An existing ``CUDA_VISIBLE_DEVICES`` (set by the user) is honoured: only those
devices are candidates, and lock files are named after their physical ids. A SLURM job that
sees one device was given it by the scheduler, so no lock is taken there; one that sees several
(the workstation profile run inside a multi-GPU allocation) claims among them like a
workstation, in a folder of its allocation (each allocation numbers its devices from 0). The
lock folder and files are shared by every user of the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass
class DeviceClaim:
    """A held device: ``index`` among the visible devices, the physical id, the open lock."""

    index: int
    physical_id: str
    lock: IO | None

    @property
    def torch_device(self) -> str:
        return f"cuda:{self.index}"

    def release(self) -> None:
        if self.lock is not None:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()
            self.lock = None


def default_lock_dir() -> Path:
    """One folder per machine (not per workflow), so separate runs also share devices fairly."""
    return Path(tempfile.gettempdir()) / "synergyseg-gpu-locks"


def visible_ids(device_count: int, env: dict[str, str] | None = None) -> list[str]:
    """Physical ids of the devices this process may use."""
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and listed.strip() != "":
        ids = [part.strip() for part in listed.split(",") if part.strip()]
        return ids[:device_count]
    return [str(i) for i in range(device_count)]


def claim_gpu(
    device_count: int,
    lock_dir: str | Path | None = None,
    timeout: float = 0.0,
    poll: float = 5.0,
    env: dict[str, str] | None = None,
) -> DeviceClaim:
    """Lock the first free visible device; wait up to ``timeout`` seconds for one to free up."""
    ids = visible_ids(device_count, env)
    if not ids:
        raise RuntimeError("no CUDA device is visible to claim")
    lock_dir = shared_folder(Path(lock_dir) if lock_dir else default_lock_dir())
    deadline = time.monotonic() + timeout
    while True:
        for index, physical in enumerate(ids):
            handle = open_lock_file(lock_dir / f"gpu-{physical}.lock")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            if handle.writable():  # who holds it, for a user looking at the folder
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()}\n")
                handle.flush()
            log.info("claimed GPU %s (cuda:%d)", physical, index)
            return DeviceClaim(index, physical, handle)
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"all {len(ids)} visible GPUs ({', '.join(ids)}) are claimed by other jobs; "
                f"run with --resources gpu=<number of GPUs> so Snakemake does not oversubscribe"
            )
        time.sleep(poll)


def shared_folder(path: Path) -> Path:
    """``path``, created if needed; one this process creates is open to every user (sticky,
    like /tmp), so another user's GPU jobs on the same machine can lock devices in it too."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # only the folder's owner may; one did
            path.chmod(0o1777)
    return path


def open_lock_file(path: Path) -> IO:
    """A handle on ``path`` to ``flock``, created read-write for every user (a machine's users
    share its GPUs). Never through a symbolic link: the folder's name is predictable, so a
    link there could point a job at another file, which it would empty and open to everyone.
    Read-only where another user's file denies writing (a read-only handle locks as well)."""
    safe = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | safe, 0o666)
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY | safe)
        except OSError as err:
            raise RuntimeError(
                f"cannot create the GPU lock file {path} ({err.strerror}): its folder belongs "
                f"to another user and is not writable; ask them to `chmod 1777 {path.parent}`, "
                "or set TMPDIR to a folder of your own"
            ) from err
        writable = False
    except OSError as err:  # ELOOP: a symbolic link
        raise RuntimeError(f"GPU lock file {path} is not a regular file: {err.strerror}") from err
    else:
        writable = True
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RuntimeError(f"GPU lock file {path} is not a regular file; remove it")
    if writable and info.st_uid == os.getuid():
        os.fchmod(fd, 0o666)  # past the umask
    return os.fdopen(fd, "r+" if writable else "r")


DEVICE_CHOICES = ("cuda", "cpu", "auto")


class NoUsableGPUError(RuntimeError):
    """A GPU rule found no usable GPU and the config did not allow the CPU."""


def cuda_unusable_reason(env: dict[str, str] | None = None) -> str | None:
    """Why CUDA cannot be used by this process (None when it can), in words a user can act on.

    A CPU-only PyTorch build, a job without a GPU allocation and a broken driver all make
    ``torch.cuda.is_available()`` false; the message tells which where PyTorch can tell. (A
    driver that fails only on first use is caught by :func:`select_device` on the claimed device.)
    """
    import torch

    env = os.environ if env is None else env
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"this PyTorch ({torch.__version__}) is a CPU-only build"
    if not torch.cuda.is_available():
        visible = env.get("CUDA_VISIBLE_DEVICES")
        where = (
            "no GPU is visible (CUDA_VISIBLE_DEVICES is empty)"
            if visible is not None and visible.strip() == ""
            else f"CUDA_VISIBLE_DEVICES={visible}"
            if visible
            else "CUDA_VISIBLE_DEVICES unset"
        )
        return (
            f"PyTorch {torch.__version__} (CUDA {torch.version.cuda or torch.version.hip}) "
            "finds no usable GPU "
            f"({where}; no device, or no working NVIDIA driver)"
        )
    return None


def select_device(
    choice: str = "cuda", lock_dir: str | Path | None = None, timeout: float = 3600.0
):
    """(torch device, claim) for a GPU rule, following the config's ``device`` choice.

    ``cuda`` (the default) stops with :class:`NoUsableGPUError` when no GPU is usable, so a
    job that landed on the wrong node or got a CPU-only PyTorch never trains for days on the
    CPU; ``cpu`` uses the CPU on purpose; ``auto`` uses a GPU when there is one and the CPU
    otherwise (the demo). The chosen device is logged either way. Keep the returned claim
    alive for the whole job; its lock is released when the process ends.
    """
    import torch

    if choice not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {choice!r}")
    if choice == "cpu":
        log.info("device: cpu (config device: cpu)")
        return torch.device("cpu"), None
    reason = cuda_unusable_reason()
    device, claim = (None, None) if reason else _claim_device(lock_dir, timeout)
    if device is not None:
        try:
            torch.cuda.set_device(device)
            torch.zeros(1, device=device)  # a driver/runtime mismatch shows only on first use
        except RuntimeError as err:
            reason = f"{device} cannot be used: {err}"
            if claim is not None:
                claim.release()
    if reason is None:
        log.info("device: %s (%s)", device, torch.cuda.get_device_name(device))
        return device, claim
    if choice == "cuda":
        raise NoUsableGPUError(
            f"this GPU job found no usable GPU: {reason}. Run it where a GPU is allocated "
            "(a GPU partition, --gpus), install a CUDA build of PyTorch, or set "
            "`device: cpu` (or `auto`) in the config to run on the CPU on purpose."
        )
    log.warning("device: cpu (config device: auto, and %s)", reason)
    return torch.device("cpu"), None


def _claim_device(lock_dir, timeout):
    """The one device SLURM allocated to this job, or a device claimed by lock among the
    visible ones (also inside a SLURM allocation of several, which jobs share)."""
    import torch

    count = torch.cuda.device_count()
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if slurm_job and count == 1:
        log.info("SLURM job: using its allocated device cuda:0 without a lock")
        return torch.device("cuda:0"), None
    if slurm_job:  # every allocation numbers its devices from 0: locks of this one only
        shared = shared_folder(Path(lock_dir) if lock_dir else default_lock_dir())
        lock_dir = shared / f"slurm-job-{slurm_job}"
    claim = claim_gpu(count, lock_dir=lock_dir, timeout=timeout)
    return torch.device(claim.torch_device), claim
