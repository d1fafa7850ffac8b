"""GPU claim on a shared workstation, with fake devices (no GPU needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synergyseg.gpu import NoUsableGPUError, claim_gpu, select_device, visible_ids


def test_two_jobs_get_two_different_gpus_and_a_third_is_told(tmp_path):
    first = claim_gpu(2, lock_dir=tmp_path, env={})
    second = claim_gpu(2, lock_dir=tmp_path, env={})
    assert (first.index, second.index) == (0, 1)
    assert first.torch_device == "cuda:0" and second.torch_device == "cuda:1"
    with pytest.raises(RuntimeError, match="all 2 visible GPUs .* are claimed"):
        claim_gpu(2, lock_dir=tmp_path, env={})
    first.release()
    assert claim_gpu(2, lock_dir=tmp_path, env={}).index == 0


def test_claim_is_exclusive_across_processes_and_freed_when_a_job_dies(tmp_path):
    code = (
        "import sys, time; from synergyseg.gpu import claim_gpu; "
        f"c = claim_gpu(2, lock_dir={str(tmp_path)!r}, env={{}}); "
        "print(c.physical_id, flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        assert claim_gpu(2, lock_dir=tmp_path, env={}).physical_id == "1"
    finally:
        holder.kill()
        holder.wait()
    # the killed job's lock is gone with its process: GPU 0 is free again
    assert claim_gpu(2, lock_dir=tmp_path, env={}).physical_id == "0"


def test_existing_cuda_visible_devices_is_honoured(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "3,5"}
    assert visible_ids(2, env) == ["3", "5"]
    claim = claim_gpu(2, lock_dir=tmp_path, env=env)
    assert (claim.index, claim.physical_id) == (0, "3")
    assert (tmp_path / "gpu-3.lock").is_file()
    assert visible_ids(4, {"CUDA_VISIBLE_DEVICES": ""}) == ["0", "1", "2", "3"]


def test_no_visible_gpu_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no CUDA device"):
        claim_gpu(0, lock_dir=tmp_path, env={})


# --- the config's device choice: no silent CPU fallback --------------------------------------


@pytest.fixture
def no_gpu(monkeypatch):
    """A CUDA build of PyTorch that finds no GPU (a CPU node, a job without --gpus)."""
    import torch

    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def test_a_gpu_rule_without_a_gpu_stops_and_says_why(no_gpu):
    with pytest.raises(NoUsableGPUError) as err:
        select_device("cuda")
    message = str(err.value)
    assert "no usable GPU" in message and "CUDA_VISIBLE_DEVICES is empty" in message
    assert "device: cpu" in message  # ... and how to run on the CPU on purpose


def test_a_cpu_only_pytorch_build_is_named(monkeypatch):
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)  # not a ROCm build either
    with pytest.raises(NoUsableGPUError, match="CPU-only build"):
        select_device("cuda")


def test_cpu_on_purpose_and_auto_fallback_are_logged(no_gpu, caplog):
    caplog.set_level("INFO", logger="synergyseg")
    assert str(select_device("cpu")[0]) == "cpu"
    assert "device: cpu (config device: cpu)" in caplog.text
    device, claim = select_device("auto")
    assert (str(device), claim) == ("cpu", None)
    warning = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning and "config device: auto" in warning[0].getMessage()
    assert "no usable GPU" in warning[0].getMessage()


@pytest.fixture
def fake_gpus(monkeypatch):
    """A CUDA build that sees ``n`` devices (``fake_gpus(n)``); set_device and first use work."""
    import torch

    def see(n: int):
        monkeypatch.setattr(torch.version, "cuda", "12.8")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
        monkeypatch.setattr(torch, "zeros", lambda *args, **kwargs: None)
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return see


@pytest.mark.parametrize("failing", ["set_device", "zeros"])
def test_a_gpu_that_fails_on_first_use_is_not_used_and_its_claim_is_freed(
    fake_gpus, monkeypatch, tmp_path, failing
):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")

    fake_gpus(1)
    monkeypatch.setattr(torch.cuda if failing == "set_device" else torch, failing, broken)
    with pytest.raises(NoUsableGPUError, match="driver version is insufficient"):
        select_device("cuda", lock_dir=tmp_path, timeout=0)
    # the failed device's lock was released: another job may claim it
    assert claim_gpu(1, lock_dir=tmp_path, env={}).physical_id == "0"


def test_a_slurm_job_with_one_gpu_uses_it_without_a_lock(fake_gpus, monkeypatch, tmp_path):
    fake_gpus(1)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    device, claim = select_device("cuda", lock_dir=tmp_path / "locks")
    assert (str(device), claim) == ("cuda:0", None)
    assert not (tmp_path / "locks").exists()


def test_jobs_sharing_a_multi_gpu_slurm_allocation_claim_different_gpus(
    fake_gpus, monkeypatch, tmp_path
):
    """The workstation profile inside `salloc --gpus=2`: each GPU job gets its own device."""
    fake_gpus(2)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    first, first_claim = select_device("cuda", lock_dir=tmp_path, timeout=0)
    second, second_claim = select_device("cuda", lock_dir=tmp_path, timeout=0)
    assert (str(first), str(second)) == ("cuda:0", "cuda:1")
    assert first_claim is not None and second_claim is not None
    # another allocation on the same node numbers its own devices from 0 too: it locks its own
    monkeypatch.setenv("SLURM_JOB_ID", "43")
    assert str(select_device("cuda", lock_dir=tmp_path, timeout=0)[0]) == "cuda:0"
    assert (tmp_path / "slurm-job-42" / "gpu-1.lock").is_file()
    assert (tmp_path / "slurm-job-43" / "gpu-0.lock").is_file()


def test_the_lock_folder_and_files_are_open_to_every_user(tmp_path):
    folder = tmp_path / "locks"
    claim_gpu(1, lock_dir=folder, env={}).release()
    assert folder.stat().st_mode & 0o7777 == 0o1777  # past this process's umask
    assert (folder / "gpu-0.lock").stat().st_mode & 0o777 == 0o666


def deny_opening(monkeypatch, flag: int) -> None:
    """``os.open`` refuses any opening with ``flag`` as another user's file or folder would
    (this test may run as root, whom permissions do not stop)."""
    real_open = os.open

    def denied(path, flags, *args):
        if flags & flag:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", denied)


def test_a_lock_file_another_user_left_read_only_still_locks(tmp_path, monkeypatch):
    (tmp_path / "gpu-0.lock").write_text("")
    deny_opening(monkeypatch, os.O_RDWR)
    claim = claim_gpu(1, lock_dir=tmp_path, env={})
    assert claim.physical_id == "0" and not claim.lock.writable()
    with pytest.raises(RuntimeError, match="claimed by other jobs"):
        claim_gpu(1, lock_dir=tmp_path, env={})


def test_a_lock_file_that_is_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path):
    """The lock folder's name is predictable: a link planted there must not make a GPU job
    empty another file and open it to every user."""
    target = tmp_path / "private.txt"
    target.write_text("secret\n")
    target.chmod(0o600)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "gpu-0.lock").symlink_to(target)
    with pytest.raises(RuntimeError, match="gpu-0.lock is not a regular file"):
        claim_gpu(1, lock_dir=tmp_path / "locks", env={})
    assert target.read_text() == "secret\n" and target.stat().st_mode & 0o777 == 0o600


def test_a_lock_folder_nobody_may_write_to_is_named(tmp_path, monkeypatch):
    """An older release made the folder writable by its creator only: another user's job
    cannot create its lock file there and is told which folder and what to do."""
    deny_opening(monkeypatch, os.O_CREAT)
    with pytest.raises(RuntimeError, match=f"chmod 1777 {tmp_path}"):
        claim_gpu(1, lock_dir=tmp_path, env={})


def test_an_unknown_device_choice_is_refused():
    with pytest.raises(ValueError, match="cuda, cpu, auto"):
        select_device("gpu")
