"""The GPU acceptance script runs on the CPU at toy size, every section, so CI exercises it."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from synergyseg.model import vgg16_features

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_section_at_toy_size(tiny_split, tiny_store, tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(tiny_split, demo / "split1.csv")
    (demo / "store").symlink_to(tiny_store)
    features = vgg16_features(0.125, 4).state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, demo / "encoder.pth")
    result = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--toy", "--demo", str(demo), "--out", str(tmp_path)]
        + ["--cold-job"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sections failed: none" in result.stdout
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    for size in ("64x64", "96x64"):
        rows = results["training"][size]
        assert all(rows[path]["images_per_s"] > 0 for path in "abcd"), rows
        # MFU against the measured peak (two separate timings: on two busy cores their ratio
        # is not bounded by 1, as it is on a quiet device)
        peak = results["matmul peak"]["flops"]
        for path in "abcd":
            expected = rows[path]["images_per_s"] * rows["flops_per_image"] / peak
            assert rows[path]["mfu"] == pytest.approx(expected)
    for row in results["training profile"].values():  # batch 2 and the filling batch
        phases, kinds = row["phases_ms_per_step"], row["kinds_ms_per_step"]
        assert set(phases) == {"forward", "backward", "optimiser"}
        assert min(phases.values()) > 0 and kinds["convolution"] > 0
        # one total split two ways, within the wall time of the profiled steps
        assert sum(phases.values()) == pytest.approx(sum(kinds.values()))
        assert sum(phases.values()) <= 1.05 * row["ms_per_step"]
        # the costliest beside the convolutions, each with its caller and input shapes
        callers = row["callers_ms_per_step"]
        assert 0 < sum(callers.values()) <= sum(phases.values()) - kinds["convolution"] + 1e-9
        assert all(" < " in name and "convolution" not in name.split(" <")[0] for name in callers)
    inference = results["prediction and Grad-CAM"]
    assert inference["predict_images_per_s"] > 0 and inference["predict_network_images_per_s"] > 0
    for waits in inference["predict_waits_s_by_threads"].values():  # what held the job up
        assert set(waits) == {"reading", "device", "compression"} and waits["device"] > 0
    assert set(results["demo run"]["dice"]) == {"tii1", "tii2", "lmi1", "lmi2"}
    assert results["projection"]["total"] > 0
    # the two-regime experiment: twice the lanes, at the first size only, not projected
    assert results["training"]["64x64"]["d2x"]["images_per_s"] > 0
    assert "d2x" not in results["training"]["96x64"]
    assert "64x64: d2x (two regimes' models) x" in result.stdout.split("== summary")[1]
    fused = results["training"]["64x64"]["d"]  # timed once, at the first size
    assert fused["setup_s"] > 0 and fused["save_s"] > 0 and fused["state_mb"] > 0
    assert "save_s" not in results["training"]["96x64"]["d"]
    projection = results["projection"]
    assert 0 < projection["setup_hours"] + projection["saving_hours"] < projection["total"]
    cold = results["cold training job"]  # a fresh process: imports, data, models, checkpoints
    assert 0 < cold["fixed_s"] < cold["total_s"]
    assert projection["cold_setup_hours"] == pytest.approx(27 * cold["fixed_s"] / 3600)
    assert cold["fixed_s_cached"] > 0  # a second fresh process (the CPU compiles nothing)
    cached = (15 * cold["fixed_s"] + 12 * cold["fixed_s_cached"]) / 3600  # splits, depletions
    assert projection["cached_setup_hours"] == pytest.approx(cached)


def test_projection_adds_each_training_jobs_set_up_and_resume_saves(monkeypatch, capsys):
    """Worked by hand for the kidney (20 epochs at 512x512): 20 x 1,024 x 10 models x 9
    regimes = 1,843,200 training images and 20 x 64 x 10 x 9 / 3 = 38,400 image-equivalents of
    monitoring, at 100 images/s 18,816 s, 2,090.7 s per regime's job: saves after 600 s, 1,200 s
    and 1,800 s of it and after its last epoch, 4 x 5 s, plus 60 s of set-up: 9 x 80 = 720 s.
    45,424 slices x 3.7 test sides x 10 models at 1,000 images/s: 1,680.688 s. In all
    21,216.688 s = 5.8935 GPU-hours. Saving after every epoch would have been 9 x 20 x 5 s."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    fused = {"images_per_s": 100.0, "setup_s": 60.0}
    monkeypatch.setattr(
        gpu_check,
        "RESULTS",
        {
            "training": {
                "512x512": {"d": fused | {"save_s": 5.0}},
                "608x416": {"d": fused},  # states are timed at one size only
            },
            "prediction and Grad-CAM": {"predict_images_per_s": 1000.0},
        },
    )
    projection = gpu_check.projection_section(["512x512", "608x416"], toy=False)
    assert projection["gpu_hours"]["kidney"] == pytest.approx(21216.688 / 3600)
    kidney_every_epoch = 9 * 20 * 5 / 3600
    skin_and_prostate = 2 * 9 * 40 * 5 / 3600
    assert projection["saving_every_epoch_hours"] == pytest.approx(
        kidney_every_epoch + skin_and_prostate
    )
    assert "no resume-state save timed" not in " ".join(projection["notes"])
    kidney_saves = 9 * 4 * 5 / 3600
    assert projection["saving_hours"] == pytest.approx(kidney_saves + 2 * 9 * 7 * 5 / 3600)


def test_two_regime_experiment_is_compared_in_its_own_mode(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    rows = {  # compiled: 20 lanes against 10 lanes and against one model at batch 32
        "flops_per_image": 5.8e11,
        "c": {"images_per_s": 480.0},
        "d": {"images_per_s": 420.0},
        "c_compiled": {"images_per_s": 750.0},
        "d_compiled": {"images_per_s": 600.0},
        "d2x_compiled": {"images_per_s": 690.0},
    }
    assert gpu_check.lanes_ratios(rows) == [
        "d2x_compiled (two regimes' models) x1.15 one regime's models, "
        "x0.92 one model at the filling batch"
    ]
    del rows["c_compiled"]  # what failed is left out
    assert gpu_check.lanes_ratios(rows) == [
        "d2x_compiled (two regimes' models) x1.15 one regime's models"
    ]
    assert gpu_check.lanes_ratios({"d": {"error": "out of memory"}}) == []


def test_resume_saves_benchmark_times_real_states_and_projects_both_policies():
    result = subprocess.run(
        [sys.executable, "bench/resume_saves.py", "--models", "1", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1 full-width resume states, 141 MB: saved in ")
    seconds = float(lines[0].split("saved in ")[1].split(" s")[0])
    assert "after every epoch (baseline)" in lines[2] and lines[2].endswith("x 1.00")
    # the measured save, 900 times: (40 + 40 + 20) epochs x 9 regimes, at 0.01 h resolution
    every_epoch = float(lines[2].split(":")[1].split("GPU-hours")[0])
    assert every_epoch == pytest.approx(900 * seconds / 3600, abs=0.01)


def test_gpu_check_projects_the_full_configs_settings():
    """The projection's thread count and save interval are config/config.yaml's."""
    import yaml

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        gpu_check = importlib.import_module("gpu_check")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert gpu_check.PREDICT_THREADS == config["predict"]["threads"]
    assert gpu_check.TRAIN_THREADS == config["train"]["threads"]
    assert gpu_check.RESUME_STATE_MINUTES == config["train"]["resume_state_minutes"]


def test_profile_counts_kernels_not_the_profilers_own_records(monkeypatch):
    """On an H100 torch 2.11 gave "Command Buffer Full" (the host waiting for a full launch
    queue) 7 ms of device time per step, and an ``Optimizer.step`` range on the device's
    timeline counted its kernels twice: phases summed to more than the step's wall time."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    host, cuda = torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.CUDA

    def operator(name, ms, parent=None):
        return SimpleNamespace(
            name=name,
            device_type=host,
            self_device_time_total=ms * 1e3,  # microseconds, as the profiler gives them
            self_cpu_time_total=0.0,
            cpu_parent=parent,
        )

    def kernel(name, ms, **annotation):
        return SimpleNamespace(
            key=name, device_type=cuda, self_device_time_total=ms * 1e3, **annotation
        )

    backward = operator("autograd::engine::evaluate_function: ConvolutionBackward0", 0.0)
    optimiser = operator("Optimizer.step#Adadelta.step", 0.0)
    events = [
        operator("aten::cudnn_convolution", 2.0),
        operator("aten::add_", 0.5, backward),
        operator("aten::_foreach_addcmul_", 0.3, optimiser),
        operator("Command Buffer Full", 7.0),
        SimpleNamespace(**vars(operator("Activity Buffer Request", 5.0)), activity_type="overhead"),
    ]
    averages = [
        kernel("sm90_xmma_fprop_implicit_gemm", 2.0, is_user_annotation=False),
        kernel("vectorized_elementwise_kernel", 0.5, is_user_annotation=False),
        kernel("multi_tensor_apply_kernel", 0.3, is_user_annotation=False),
        kernel("Optimizer.step#Adadelta.step", 1.3, is_user_annotation=True),
        kernel("ProfilerStep#3", 4.0),  # a torch without the flag: known by its name
        kernel("Optimizer.zero_grad#Adadelta.zero_grad", 0.2),
    ]
    row = gpu_check.step_times(events, averages, cuda=True, wall=0.010, steps=2)
    assert row["phases_ms_per_step"] == pytest.approx(
        {"forward": 1.0, "backward": 0.25, "optimiser": 0.15}
    )
    assert sum(row["kinds_ms_per_step"].values()) == pytest.approx(1.4)
    assert "Command Buffer Full" not in row["operators_ms_per_step"]
    assert row["callers_ms_per_step"] == pytest.approx(
        {
            "aten::add_ < autograd::engine::evaluate_function: ConvolutionBackward0 []": 0.25,
            "aten::_foreach_addcmul_ < Optimizer.step#Adadelta.step []": 0.15,
        }
    )
    assert row["busy"] == pytest.approx(2.8e-3 / 0.010)  # 2.8 ms of kernels in 10 ms
    assert list(row["kernels_ms_per_step"]) == [
        "sm90_xmma_fprop_implicit_gemm",
        "vectorized_elementwise_kernel",
        "multi_tensor_apply_kernel",
    ]


def test_projection_totals_eager_and_compiled(monkeypatch, capsys):
    """The projection sums each dataset's GPU-hours for the eager and the compiled fused
    models, and the summary prints both totals (the compiled one was once dropped). A size
    not timed compiled borrows the other's speed-up, with a note; with none, no compiled
    total."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    rows = {
        "d": {"images_per_s": 400.0, "mfu": 0.3},
        "d_compiled": {"images_per_s": 560.0, "mfu": 0.42},
    }
    results = {
        "training": {"512x512": rows, "608x416": rows},
        "prediction and Grad-CAM": {"predict_images_per_s": 600.0},
    }
    monkeypatch.setattr(gpu_check, "RESULTS", results)
    projection = gpu_check.projection_section(["512x512", "608x416"], False)
    assert projection["total"] == pytest.approx(sum(projection["gpu_hours"].values()))
    compiled = projection["gpu_hours_compiled"]
    assert set(compiled) == set(gpu_check.PROTOCOL)
    assert projection["total_compiled"] == pytest.approx(sum(compiled.values()))
    # compiled training is 1.4x faster; prediction is the same in both
    assert projection["total_compiled"] < projection["total"]
    capsys.readouterr()
    gpu_check.summary()
    printed = capsys.readouterr().out
    assert f"{projection['total_compiled']:.2f} GPU-hours with torch.compile" in printed
    assert f"{projection['total']:.2f} GPU-hours (fused models, eager)" in printed

    results["training"]["608x416"] = {"d": rows["d"]}  # no compiled rate
    results["training"]["512x512"] = dict(rows)
    partial = gpu_check.projection_section(["512x512"], False)
    # the speed-up at 512x512 stands in at 608x416 (noted), so every dataset has a figure
    assert set(partial["gpu_hours_compiled"]) == set(gpu_check.PROTOCOL)
    assert any("applied to 608x416" in note for note in partial["notes"])
    del results["training"]["512x512"]["d_compiled"]
    assert "total_compiled" not in gpu_check.projection_section(["512x512"], False)


def test_job_startup_times_each_planned_rules_script_once_per_job(monkeypatch, capsys):
    """Every rule the demo plans (but `all`) has its script found; the start-up of two of them
    is timed and multiplied by their job counts (one split selection per dataset; one Table
    S2)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        job_startup = importlib.import_module("job_startup")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    jobs, scripts = job_startup.demo_jobs(), job_startup.rule_scripts()
    assert set(jobs) - set(scripts) == {"all"}
    assert scripts["train_regime"] == "train_models" and scripts["select_split"] == "select_split"
    assert jobs["split_data"] == 6 and jobs["select_split"] == 3 and jobs["table_s2"] == 1
    assert "from synergyseg.figures.panels import (\n    gradcam_panel," in (
        job_startup.import_block("plot_examples")
    )
    monkeypatch.setattr(job_startup, "demo_jobs", lambda: jobs)
    argv = ["job_startup.py", "--rules", "select_split", "table_s2", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    job_startup.main()
    lines = capsys.readouterr().out.splitlines()
    select = next(line for line in lines if line.startswith("select_split "))
    table = next(line for line in lines if line.startswith("table_s2 "))
    assert " 3 jobs x " in select and " 1 jobs x " in table
    each = [float(line.split(" jobs x ")[1].split(" CPU-s")[0]) for line in (select, table)]
    assert lines[-1].startswith("start-up of 4 jobs: ")
    total = float(lines[-1].split(": ")[1].split(" CPU-s")[0])
    assert total == pytest.approx(3 * each[0] + each[1], abs=0.55)  # printed to the second


def test_predict_pipeline_benchmark_stands_in_for_the_network_of_head_and_a_baseline():
    """Its stand-in must replace the network of both versions (it checks that every image went
    through it), so that what it times is the host's side of the job."""
    baseline = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "82ebdaf^{commit}"])
    if baseline.returncode != 0:
        pytest.skip("a clone without history: no baseline commit to read predict.py from")
    result = subprocess.run(
        [sys.executable, "predict_pipeline.py", "--images", "12", "--repeats", "1"]
        + ["--baseline", "82ebdaf"],
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if "peak private" in line]
    assert [line.split()[0] for line in lines] == ["82ebdaf", "HEAD"]
    assert all("reading" in line and "compressor" in line for line in lines)


def test_the_compiled_forward_experiment_times_both_settings_against_eager(
    monkeypatch, capsys, tmp_path
):
    """With --compile the inference section also times the forward pass compiled, as is and
    with its weights frozen, each against the eager rate (torch.compile stood in here: the
    CPU never compiles, and a real compile would take minutes)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    gpu_check = importlib.import_module("gpu_check")
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiled.append(kw) or model)
    monkeypatch.setattr(gpu_check, "RESULTS", {})
    row = gpu_check.inference_section(torch.device("cpu"), True, tmp_path, 16, compile_too=True)
    assert compiled == [{"dynamic": False}] * 2  # static shapes, as training compiles
    rates = row["predict_network_compiled_images_per_s"]
    assert set(rates) == {"compiled", "compiled, weights frozen"} and min(rates.values()) > 0
    out = capsys.readouterr().out
    assert "images/s compiled, weights frozen (x " in out and "prediction runs eager" in out
