"""GPU claim on a shared workstation, with fake devices (no GPU needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synergyseg.gpu import claim_gpu, visible_ids


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
