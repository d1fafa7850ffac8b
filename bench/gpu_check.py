"""The GPU acceptance run: every GPU figure of the project, measured side by side in one go.

1. the device's bf16 matmul peak (the MFU reference);
2. training images/s and model FLOP utilisation at 512x512 and 608x416 for (a) a plain fp32
   PyTorch loop with a standard DataLoader, (b) the workflow's step at batch 2 (data on the
   device, no host sync, bf16, channels_last, CUDA graph), (c) the same at the batch that
   fills the GPU, (d) ten models side by side at batch 2 (a regime's job: graphs on streams;
   d_streamed: the same with the data read from the store per batch, as on a smaller GPU;
   c and d also compiled with --compile; d2x: twenty models, as a job training two regimes
   would run them, an experiment at the first size);
3. where a training step's device time goes (profiled): by phase, by kind of operator, and the
   top operators and kernels, eager at batch 2 and at the filling batch, and with --compile
   the compiled step at the filling batch;
4. prediction and Grad-CAM images/s (with --compile-forward also the network's forward pass
   compiled, an experiment: prediction runs eager);
5. a real training → prediction → scoring run on the demo data, and with --cold-job a
   regime's training job as the workflow starts it (a fresh process, cold compiler caches);
6. the projected GPU-hours of the full protocol from the measured rates, with each training
   job's fixed costs: setting its models up (compile, graph capture) and saving their resume
   states (ten full-width states, timed to disk).

Each section reports and goes on if another fails. On a machine without CUDA (or with --toy)
everything runs at toy size on the CPU, so CI exercises the script.

    bash bench/gpu_check.sh --out results/gpu_check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import train_speed  # bench/ is this script's folder, so its siblings import directly
from synthetic import random_store, split_manifest

from synergyseg.atomic import write_text
from synergyseg.cam import model_cams
from synergyseg.checkpoints import load_checkpoint
from synergyseg.lanes import Lane, adadelta, autocast_factory, run_epoch
from synergyseg.memory import PeakMemory
from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.predict import BLOCK_BYTES, WAITS, autocast_for, block_maps, predict_regime
from synergyseg.scoring import score_regime
from synergyseg.store import SliceStore, block_size
from synergyseg.train import (
    Job,
    SaveSchedule,
    TrainSpec,
    resolve_precision,
    save_states,
    train_models,
)
from synergyseg.training_data import TrainingData, epoch_batches

# the full protocol (config/config.yaml): images per dataset, epochs, 512 steps of 2 images,
# 5 replicates x 2 inits, 5 splits + 4 depletion regimes; test sides 20 % (x5) and 40/60/80/90 %
PROTOCOL = {  # dataset: (images, epochs, slice size)
    "skin": (3694, 40, "608x416"),  # ISIC 2018 Task 1: 2,594 + 100 + 1,000
    "prostate": (244, 40, "608x416"),  # Gleason2019 training cores
    "kidney": (45424, 20, "512x512"),  # KiTS19 axial slices of 210 cases
}
MODELS, REGIMES, STEP_IMAGES, MONITOR = 10, 9, 512 * 2, 64
SPLIT_REGIMES = 5  # of the REGIMES: the splits; the depletion regimes wait for their selection
TEST_SHARE = 5 * 0.2 + 0.4 + 0.6 + 0.8 + 0.9  # test images per image, over the 9 regimes
PREDICT_THREADS = 8  # config/config.yaml's predict.threads
TRAIN_THREADS = 4  # config/config.yaml's train.threads
RESUME_STATE_MINUTES = 10  # config/config.yaml's train.resume_state_minutes
RESULTS: dict = {}
PATHS: set | None = None  # --paths: the training paths to time (default: all)
OUT: Path | None = None  # --out: gpu_check.json is rewritten there after every section


def section(name):
    """Run a section, record its result or its error, and go on."""

    def wrap(function):
        def run(*args, **kwargs):
            started = time.perf_counter()
            print(f"\n== {name}", flush=True)
            try:
                RESULTS[name] = function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - one broken section must not hide the rest
                traceback.print_exc()
                RESULTS[name] = {"error": f"{type(error).__name__}: {error}"}
            print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
            save_results()  # a run stopped by its time limit keeps what it measured
            return RESULTS[name]

        return run

    return wrap


def bench_spec(toy: bool) -> ModelSpec:
    """The paper's full-width VGG16-UNet, or a narrow one at toy size."""
    return ModelSpec("default", 0.125 if toy else 1.0)


def training_store(work: Path, size: str) -> Path:
    """64 random training slices of ``size`` (WxH), written once per run and shared by the
    sections that train on them."""
    folder = work / f"train{size}"
    if not folder.is_dir():
        width, height = (int(v) for v in size.split("x"))
        random_store(folder, 64, height, width, 3)
    return folder


def new_lane(spec: ModelSpec, device, seed: int) -> Lane:
    """A freshly initialised model (channels_last, as training runs it) with its Adadelta."""
    torch.manual_seed(seed)
    model = VGGUNet(spec).to(device).to(memory_format=torch.channels_last)
    return Lane(model, adadelta(model, device), device)


def lanes_rate(
    data,
    spec,
    models,
    batch,
    steps,
    device,
    graphs,
    precision,
    streams=True,
    compiled=False,
    save_to: Path | None = None,
) -> dict:
    """Images/s of ``models`` lanes at ``batch`` over ``steps`` steps (after a warm-up epoch),
    and the seconds it took to set them up (build, compile, capture, the warm-up epoch);
    ``compiled`` runs each network through torch.compile (as ``train.compile`` does),
    with ``save_to`` also the seconds to save every lane's resume state there, as a training
    job does (host copy, serialisation, flush to disk)."""
    train_speed.sync(device)
    set_up = time.perf_counter()
    autocast = autocast_factory(device, precision, graphs)
    lanes = []
    for k in range(models):
        lane = new_lane(spec, device, k)
        if compiled:
            lane.compile()
        if graphs:
            lane.capture(data, batch, False, autocast)
        lanes.append(lane)
    if device.type == "cuda" and not streams:  # replay every lane's graph on one stream
        for lane in lanes:
            lane.stream = lanes[0].stream

    def epoch(epoch_steps, number):
        plans = [epoch_batches(len(data), batch, epoch_steps, k, number) for k in range(models)]
        run_epoch(lanes, plans, data, autocast)
        for lane in lanes:
            lane.take_loss()

    epoch(3, 0)
    train_speed.sync(device)
    started = time.perf_counter()
    epoch(steps, 1)
    seconds = time.perf_counter() - started
    row = {"images_per_s": models * batch * steps / seconds, "setup_s": started - set_up}
    if save_to is not None:
        row["save_s"], row["state_mb"] = save_lanes(lanes, save_to)
    return row


def save_lanes(lanes: list[Lane], folder: Path) -> tuple[float, float]:
    """Seconds to save the lanes' resume states into ``folder`` as a training job saves them
    (:func:`synergyseg.train.save_states`), and their MB on disk."""
    folder.mkdir(exist_ok=True)
    jobs = [
        Job(TrainSpec("bench", "d", "lmi", k + 1, 0, 1), folder / f"rep{k}.pt", None, {}, lane)
        for k, lane in enumerate(lanes)
    ]
    seconds = save_states(jobs)
    return seconds, sum(job.state_file.stat().st_size for job in jobs) / 2**20


@section("device")
def device_section(device):
    info = {"device": str(device), "torch": torch.__version__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "name": props.name,
            "memory_gb": round(props.total_memory / 1e9, 1),
            "capability": f"{props.major}.{props.minor}",
        }
    print("  " + ", ".join(f"{k} {v}" for k, v in info.items()))
    return info


@section("matmul peak")
def peak_section(device, toy):
    peak = train_speed.matmul_peak(device, 1024 if toy else 8192, 3 if toy else 20)
    print(f"  {peak / 1e12:.1f} TFLOP/s ({'fp32' if device.type != 'cuda' else 'bf16'})")
    return {"flops": peak}


@section("training")
def training_section(device, toy, sizes, work: Path, compile_too: bool):
    out = {}
    for size in sizes:
        out[size] = training_at(size, device, toy, work, compile_too, size == sizes[0])
    return out


def training_at(
    size: str, device, toy: bool, work: Path, compile_too: bool, first_size: bool
) -> dict:
    """Paths (a) to (d) at one slice size, on the same synthetic data; at the first size also
    d_streamed."""
    spec = bench_spec(toy)
    precision = resolve_precision("auto", device)
    cuda = device.type == "cuda"
    peak = RESULTS.get("matmul peak", {}).get("flops", float("nan"))
    models, steps, fill = (3, 4, 8) if toy else (MODELS, 30, 32)
    width, height = (int(v) for v in size.split("x"))
    flops = train_speed.train_flops_per_image(spec, height, width, device)
    store = training_store(work, size)
    data = TrainingData(SliceStore(store), np.arange(64), device, resident=cuda or None)
    images, masks = train_speed.make_data(64, height, width)
    rows: dict = {"flops_per_image": flops}
    print(f"  {size}: {flops / 1e9:.0f} GFLOP per training image, precision {precision}")
    print("  a = plain fp32 loop + DataLoader, batch 2; b = workflow step, batch 2;")
    print(f"  c = workflow step, batch {fill}; d = {models} models side by side, batch 2")

    def measure(label, function):
        if PATHS is not None and label not in PATHS:
            return
        try:
            result = function()
            row = result if isinstance(result, dict) else {"images_per_s": result}
            rate = row["images_per_s"]
            rows[label] = row | {"mfu": rate * flops / peak}
            base = rows.get("a", {}).get("images_per_s") or rate  # "a" may have failed
            extra = f"  set-up {row['setup_s']:5.1f} s" if "setup_s" in row else ""
            if "save_s" in row:
                extra += f"  saving {row['state_mb']:.0f} MB of states {row['save_s']:.1f} s"
            print(
                f"  {label:3s} {rate:9.1f} img/s  x{rate / base:5.2f}  "
                f"MFU {rate * flops / peak:6.1%}{extra}",
                flush=True,
            )
        except Exception as error:  # noqa: BLE001 - report and go on
            print(f"  {label}: failed: {type(error).__name__}: {error}"[:300], flush=True)
            rows[label] = {"error": str(error)[:300]}
        if cuda:
            torch.cuda.empty_cache()

    def lanes(n, batch, n_steps, graphs=cuda, streams=True, compiled=False, save_to=None):
        return lambda: lanes_rate(
            data,
            spec,
            n,
            batch,
            n_steps,
            device,
            graphs,
            precision,
            streams,
            compiled,
            save_to,
        )

    measure("a", lambda: train_speed.plain_loop(spec, images, masks, device, steps * 2))
    measure("b", lanes(1, 2, steps * 2))
    if cuda:
        measure("b0", lanes(1, 2, steps * 2, graphs=False))  # the same step without a graph
    measure("c", lanes(1, fill, steps))
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    # the fused models' resume states, once: their size does not depend on the slices'
    measure("d", lanes(models, 2, steps, save_to=work / "states" if first_size else None))
    if cuda:  # the data (64 images) plus ten models' weights, optimiser state and graph pools
        rows["d_peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        print(f"  d: peak GPU memory {rows['d_peak_gb']:.1f} GB for {models} models")
    if cuda:
        measure("d1", lanes(models, 2, steps, streams=False))  # graphs replayed on one stream
    if cuda and first_size:
        # data too large for the device (a smaller GPU): read from the store per batch into
        # page-locked memory, stepping eagerly
        streamed = TrainingData(SliceStore(store), np.arange(64), device, resident=False)
        measure(
            "d_streamed",
            lambda: lanes_rate(streamed, spec, models, 2, steps, device, False, precision),
        )
    if compile_too:
        measure("c_compiled", lanes(1, fill, steps, False, compiled=True))
        measure("d_compiled", lanes(models, 2, steps, compiled=True))
    if first_size:
        # an experiment: two regimes' models side by side, as a job training two regimes would
        # run them. Do more lanes fill the device further, and overlap one lane's memory-bound
        # kernels with another's convolutions, past the filling batch's rate? Not projected.
        measure(
            "d2x_compiled" if compile_too else "d2x",
            lanes(2 * models, 2, steps, compiled=compile_too),
        )
    if cuda:
        print(f"  peak GPU memory so far {torch.cuda.max_memory_allocated(device) / 1e9:.1f} GB")
    return rows


# aten operator name fragments → what the time is spent on (first match wins)
OPERATOR_KINDS = (
    ("convolution", ("conv",)),
    ("batch norm", ("batch_norm",)),
    ("activation", ("relu", "threshold")),
    ("pooling", ("pool",)),
    ("upsampling", ("upsample",)),
    ("concatenation", ("cat",)),
    ("loss", ("entropy", "nll", "softmax")),
    ("casts and copies", ("copy", "_to_", "clone", "contiguous")),
)


def operator_kind(name: str) -> str:
    if name.startswith("triton_"):
        return "fused by Inductor"  # a compiled step's own kernels, launched from Python
    if not name.startswith("aten::"):
        return "framework"  # Python scopes, autograd bookkeeping
    for kind, fragments in OPERATOR_KINDS:
        if any(fragment in name for fragment in fragments):
            return kind
    return "other elementwise"


def step_phase(event) -> str:
    """forward, backward or optimiser: from the profiled operator's callers."""
    names = []
    while event is not None:
        names.append(event.name)
        event = event.cpu_parent
    if any(name.startswith("Optimizer.") for name in names):
        return "optimiser"
    if any(name.startswith("autograd::engine") or "backward" in name for name in names):
        return "backward"
    return "forward"


def step_profile(data, spec, batch, steps, device, precision, compiled=False) -> dict:
    """One model's training step without a CUDA graph (so every kernel is seen), eager or
    through torch.compile, under torch.profiler: wall time per step, the share of it the
    device is busy, and the device time (CPU time on a CPU) by phase, by kind of operator, of
    the costliest operators and of the costliest kernels."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    autocast = autocast_factory(device, precision, False)
    lane = new_lane(spec, device, 0)
    if compiled:
        lane.compile()  # compiled by the warm-up steps below

    def epoch(number, epoch_steps):
        run_epoch([lane], [epoch_batches(len(data), batch, epoch_steps, 0, number)], data, autocast)

    epoch(0, 3)  # warm-up: cuDNN autotuning, allocator, optimiser state
    train_speed.sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as profiler:
        started = time.perf_counter()
        epoch(1, steps)
        train_speed.sync(device)
        wall = time.perf_counter() - started
    return {"ms_per_step": 1e3 * wall / steps} | step_times(
        profiler.events(), profiler.key_averages(), cuda, wall, steps
    )


# records of the profiler's own, not work: the host waiting for a full launch queue (torch
# 2.11 gives it device time), and annotations on the device's timeline (an ``Optimizer.step``
# range there spans kernels that are counted on their own)
PROFILER_OVERHEADS = ("Command Buffer Full",)
ANNOTATIONS = ("Optimizer.", "ProfilerStep#")


def is_work(event) -> bool:
    name = getattr(event, "name", None) or event.key
    if getattr(event, "activity_type", None) == "overhead" or name in PROFILER_OVERHEADS:
        return False
    return not (getattr(event, "is_user_annotation", False) or name.startswith(ANNOTATIONS))


def caller_key(event) -> str:
    """An operator with what called it and its input shapes: says *why* it runs (an add_ of a
    [1, C, 1, 1] bias after a convolution, a cast of a concatenation for the next one)."""
    chain, parent = [], event.cpu_parent
    while parent is not None and len(chain) < 2:
        chain.append(parent.name[:64])
        parent = parent.cpu_parent
    shapes = [list(shape) for shape in (getattr(event, "input_shapes", None) or []) if shape]
    return f"{event.name} < {' < '.join(chain) or '-'} {shapes[:2]}"


def step_times(events, averages, cuda: bool, wall: float, steps: int) -> dict:
    """The profile's device time (CPU time on a CPU) per step: by phase, by kind of operator,
    of the costliest operators (those beside the convolutions also by caller and input
    shapes) and of the costliest kernels; and the share of ``wall`` the device was busy.
    Kernels count once each, under the operator that launched them."""
    host = torch.autograd.DeviceType.CPU
    phases: dict[str, float] = {}
    kinds: dict[str, float] = {}
    operators: dict[str, float] = {}
    callers: dict[str, float] = {}
    for event in events:
        if event.device_type != host or not is_work(event):
            continue
        seconds = (event.self_device_time_total if cuda else event.self_cpu_time_total) / 1e6
        kind = operator_kind(event.name)
        for table, key in (
            (phases, step_phase(event)),
            (kinds, kind),
            (operators, event.name),
            (callers, caller_key(event) if kind != "convolution" else None),
        ):
            if key is not None:
                table[key] = table.get(key, 0.0) + seconds
    kernels = [r for r in averages if r.device_type != host and is_work(r)]
    # device busy: every kernel's time (also those no operator launched); CPU: operators' time
    busy = sum(r.self_device_time_total for r in kernels) / 1e6 if cuda else sum(phases.values())
    kernels = sorted(kernels, key=lambda r: -r.self_device_time_total)[:5]

    def per_step(table, n=None):
        ranked = sorted(table.items(), key=lambda item: -item[1])[:n]
        return {name: 1e3 * value / steps for name, value in ranked}

    return {
        "busy": busy / wall,
        "phases_ms_per_step": per_step(phases),
        "kinds_ms_per_step": per_step(kinds),
        "operators_ms_per_step": per_step(operators, 8),
        "callers_ms_per_step": per_step(callers, 12),
        "kernels_ms_per_step": {
            r.key[:90]: 1e3 * r.self_device_time_total / 1e6 / steps for r in kernels
        },
    }


@section("training profile")
def profile_section(device, toy, size: str, work: Path):
    """Where the eager step's time goes at the paper's batch of 2 and at the batch that fills
    the GPU: what to attack next for MFU (launch gaps, memory-bound layers, casts, the
    optimiser)."""
    batches = ((2, 6), (8, 3)) if toy else ((2, 20), (32, 6))
    return profile_rows(device, toy, size, work, batches, compiled=False)


@section("compiled training profile")
def compiled_profile_section(device, toy, size: str, work: Path):
    """The same at the filling batch through torch.compile, the workflow's default on a GPU:
    what Inductor's fusion leaves beside the convolutions."""
    return profile_rows(device, toy, size, work, ((8, 3),) if toy else ((32, 6),), compiled=True)


def profile_rows(device, toy, size, work, batches, compiled: bool) -> dict:
    spec = bench_spec(toy)
    precision = resolve_precision("auto", device)
    store = training_store(work, size)
    resident = device.type == "cuda" or None
    data = TrainingData(SliceStore(store), np.arange(64), device, resident=resident)
    out = {}
    for batch, steps in batches:
        row = step_profile(data, spec, batch, steps, device, precision, compiled)
        what = "device busy" if device.type == "cuda" else "CPU time"
        print(
            f"  {size}, batch {batch}, {'compiled' if compiled else 'eager'} {precision}: "
            f"{row['ms_per_step']:.2f} ms per step, {what} {row['busy']:.0%} of it"
        )
        for title in ("phases", "kinds"):
            cells = row[f"{title}_ms_per_step"].items()
            print(f"    {title}: " + ", ".join(f"{name} {ms:.2f}" for name, ms in cells) + " ms")
        for name, ms in row["operators_ms_per_step"].items():
            print(f"    {ms:8.3f} ms  {name}")
        for name, ms in row["kernels_ms_per_step"].items():
            print(f"    {ms:8.3f} ms  kernel {name}")
        for name, ms in row["callers_ms_per_step"].items():
            print(f"    {ms:8.3f} ms  by caller: {name[:150]}")
        out[f"batch{batch}"] = row
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


@section("prediction and Grad-CAM")
def inference_section(device, toy, work: Path, n: int | None = None, compile_too=False):
    """A predict job of ``n`` test images x ten models at the workflow's thread count (and at
    twice it), the network's own forward rate, and Grad-CAM's rate. ``compile_too`` adds an
    experiment: the network's forward rate through torch.compile, as is and with its weights
    frozen into the graph (Inductor can then fold each BatchNorm into its convolution);
    prediction itself runs eager."""
    spec = bench_spec(toy)
    # by default enough images for nine of predict_regime's blocks (~93 at 512x512 with ten
    # models), so that the figure is near the job's steady state: each block's maps are
    # compressed on threads while the device computes the next one (one block alone overlaps
    # nothing); a real kidney job holds ~100 blocks (a 20 % test side) to ~440 (90 %)
    side, models = (64, 3) if toy else (512, MODELS)
    n = n or (48 if toy else 768)
    store = random_store(work / "predict", n, side, side, 1)
    split = split_manifest(work / "predict.csv", n, "test")
    checkpoints = []
    for k in range(models):
        torch.manual_seed(k)
        path = work / f"model{k}.pt"
        meta = {  # as a GPU-trained checkpoint records it: prediction uses its precision
            "spec": {"model": {"variant": spec.variant, "width": spec.width}},
            "precision": resolve_precision("auto", device),
        }
        torch.save({"state_dict": VGGUNet(spec).state_dict(), "meta": meta}, path)
        checkpoints.append(path)
    outs = [work / f"pred{k}.npz" for k in range(models)]
    # warm-up on the job's block shapes (a full block and the last, shorter one): their last
    # batches are smaller than 16, and cuDNN's benchmark mode tunes each new shape once
    per_block = block_size(side * side * (1 + models), BLOCK_BYTES)
    warm = split_manifest(work / "warm.csv", min(n, per_block + n % per_block), "test")
    predict_regime(checkpoints, warm, store, outs, batch_size=16, device=device, threads=8)
    model, meta = load_checkpoint(checkpoints[0])  # one model, loaded as predict_regime does
    network = [model.to(device).to(memory_format=torch.channels_last)]
    autocast = [autocast_for(meta, device)]
    block = SliceStore(store).images(range(min(n, 64)))
    device_rate = forward_rate(network, autocast, block, device)
    print(f"  the network alone {device_rate:.1f} images/s (forward, batch 16)")
    compiled_rates = {}
    for frozen in (False, True) if compile_too else ():
        import torch._inductor.config as inductor

        name = "compiled, weights frozen" if frozen else "compiled"
        with inductor.patch(freezing=frozen):
            torch._dynamo.reset()  # a fresh graph for each setting
            compiled = [torch.compile(network[0], dynamic=False)]
            compiled_rates[name] = forward_rate(compiled, autocast, block, device)
            torch._dynamo.reset()  # its graphs and their memory go
        print(
            f"  the network alone {compiled_rates[name]:.1f} images/s {name} (x "
            f"{compiled_rates[name] / device_rate:.2f}; an experiment: prediction runs eager)"
        )
    rates, waits = {}, {}
    for threads in (PREDICT_THREADS, 2 * PREDICT_THREADS):
        figures = predict_regime(
            checkpoints, split, store, outs, batch_size=16, device=device, threads=threads
        )
        rates[threads] = figures["images_per_s"]
        waits[threads] = {what: figures[f"{what}_s"] for what in WAITS}
        print(
            f"  prediction {rates[threads]:.1f} model-images/s at {side}x{side} with "
            f"{threads} threads (the job: {n} images x {models} models, written); of its "
            f"{figures['seconds']:.2f} s it waited "
            + ", ".join(f"{s:.2f} s {WAITS[what]}" for what, s in waits[threads].items())
        )
    images = SliceStore(store).images(range(min(n, 16)))
    cam_args = (None, "predicted", 4, device, autocast[0])  # as explain_images runs it
    model_cams(model, images[:4], *cam_args)
    train_speed.sync(device)
    started = time.perf_counter()
    model_cams(model, images, *cam_args)
    train_speed.sync(device)
    cam_rate = len(images) / (time.perf_counter() - started)
    print(f"  Grad-CAM {cam_rate:.1f} images/s (both classes, batch 4)")
    return {
        "predict_images": n,
        "predict_images_per_s": rates[PREDICT_THREADS],  # as the workflow runs the job
        "predict_images_per_s_by_threads": rates,
        "predict_waits_s_by_threads": waits,  # reading the store, the device, the compressor
        "predict_network_images_per_s": device_rate,
        "predict_network_compiled_images_per_s": compiled_rates,
        "gradcam_images_per_s": cam_rate,
    }


def forward_rate(network, autocast, block, device) -> float:
    """Images/s of ``block_maps`` over ``block`` (batches of 16), after a warm-up pass in which
    cuDNN picks its kernels and a compiled network compiles."""
    block_maps(network, autocast, block, 16, device)
    started = time.perf_counter()
    block_maps(network, autocast, block, 16, device)  # returns on the host: synchronised
    return len(block) / (time.perf_counter() - started)


@section("demo run")
def demo_section(device, demo: Path | None, work: Path, toy: bool, compile_model: bool):
    """train_models → predict_regime → score_regime on the demo's skin split1 (4 models)."""
    if demo is None:
        print("  no --demo folder given; skipped")
        return {"skipped": True}
    split, store, weights = demo / "split1.csv", demo / "store", demo / "encoder.pth"
    width = float(torch.load(weights, weights_only=True)["features.0.weight"].shape[0]) / 64
    specs = [
        TrainSpec(
            "skin",
            "split1",
            init,
            rep,
            2021,
            2 if toy else 12,
            ModelSpec("default", width, 2, 0.1),
            4,
            monitor_images=8,
        )
        for init in ("tii", "lmi")
        for rep in (1, 2)
    ]
    outs = [work / f"demo_{s.init}{s.rep}.pt" for s in specs]
    with PeakMemory() as memory:
        started = time.perf_counter()
        histories = [o.with_suffix(".csv") for o in outs]
        train_models(
            specs,
            split,
            store,
            outs,
            histories,
            weights,
            device,
            compile_model=compile_model,
            state_every_s=60 * RESUME_STATE_MINUTES,  # as the workflow saves
        )
        trained = time.perf_counter() - started
        predictions = [o.with_suffix(".npz") for o in outs]
        predict_regime(outs, split, store, predictions, 32, device)
        keys = [(s.init, s.rep) for s in specs]
        metric_files = {k: work / f"demo_{k[0]}{k[1]}.metrics.csv" for k in keys}
        score_regime(dict(zip(keys, predictions, strict=True)), split, store, metric_files)
    dice = {
        f"{k[0]}{k[1]}": float(pd.read_csv(path)["dice"].median())
        for k, path in metric_files.items()
    }
    print(f"  4 models trained in {trained:.1f} s; median test Dice {dice}")
    print(f"  host memory: peak private {memory.anon_total / 2**30:.2f} GiB (RssAnon)")
    return {"train_seconds": trained, "dice": dice, "host_peak_gib": memory.anon_total / 2**30}


# one regime's training job in a fresh process, much as the workflow starts it (config.yaml's
# threads, compile on a GPU, 64 monitoring images; all LMI, so no weights file): only its
# epoch of three steps is training, the rest is what every job pays beside its epochs (Python
# and PyTorch, the data, building, compiling and capturing the models, compiling the eval-mode
# monitoring pass, the save after the last epoch and the checkpoints)
COLD_JOB = """
import json, sys
from synergyseg.model import ModelSpec
from synergyseg.train import TrainSpec, train_models
store, split, folder, width, models, device, threads = sys.argv[1:8]
model = ModelSpec("default", float(width))
specs = [
    TrainSpec("bench", "cold", "lmi", k + 1, 1, 1, model, 2, steps_per_epoch=3, monitor_images=64)
    for k in range(int(models))
]
outs = [f"{folder}/rep{k + 1}.pt" for k in range(int(models))]
histories = train_models(specs, split, store, outs, [o + ".csv" for o in outs], device=device,
                         threads=int(threads), compile_model=True, state_every_s=600)
print(json.dumps({"epoch_s": histories[0][-1]["seconds"]}))
"""


@section("cold training job")
def cold_job_section(device, toy: bool, size: str, work: Path):
    """A regime's ten models trained for three steps by a fresh process with empty compiler
    caches (compiled on a GPU, as ``train.compile`` does by default): its wall time less the
    epoch is what a job pays beside its epochs on a node that has not compiled this network
    before, the save after its last epoch included. Then the same job once more in a fresh
    process that finds the first one's compiler caches, as a job that starts after another
    compiled its image size does on any node with the project's ``train.compile_cache``."""
    models = 3 if toy else MODELS
    store = training_store(work, size)
    split = split_manifest(work / "cold.csv", 64, "train")
    folder = work / "cold"
    folder.mkdir(exist_ok=True)
    caches = {  # cold: nothing compiled before on this "node"
        "TORCHINDUCTOR_CACHE_DIR": str(work / "cold_inductor"),
        "TRITON_CACHE_DIR": str(work / "cold_triton"),
    }
    if device.type == "cuda":  # the memory this process still caches is the job's to use
        torch.cuda.empty_cache()
    arguments = [str(store), str(split), str(folder), str(bench_spec(toy).width), str(models)]

    def job() -> tuple[float, float]:
        """The job's wall seconds, and those of them beside its epoch."""
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-c", COLD_JOB, *arguments, device.type, str(TRAIN_THREADS)],
            capture_output=True,
            text=True,
            env=os.environ | caches,
            check=False,
            timeout=300,  # a compile that hangs must not take the rest of the run with it
        )
        total = time.perf_counter() - started
        if run.returncode != 0:
            raise RuntimeError(f"the training job failed: {run.stderr[-2000:]}")
        return total, total - json.loads(run.stdout.strip().splitlines()[-1])["epoch_s"]

    total, fixed = job()
    compiled = device.type == "cuda"
    print(
        f"  {models} models at {size}{', compiled' if compiled else ''}: {total:.1f} s in all, "
        f"{fixed:.1f} s of it beside the epoch (its last save included)"
    )
    out = {"models": models, "total_s": total, "fixed_s": fixed, "compiled": compiled}
    try:  # the cold job's figures stand whatever this one does
        total_cached, out["fixed_s_cached"] = job()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"  the same job with the first one's compiler caches failed: {error}")
        return out | {"cached_error": str(error)[-2000:]}
    print(
        f"  the same job with the first one's compiler caches: {total_cached:.1f} s in all, "
        f"{out['fixed_s_cached']:.1f} s beside the epoch (on this machine, its files in the "
        "page cache: a fresh node's is higher)"
    )
    return out


@section("projection")
def projection_section(sizes, toy: bool):
    """GPU-hours of config/config.yaml from the measured rates (toy: the toy rates stand in
    for the protocol's sizes in order, to exercise the arithmetic), each of its training jobs
    (a regime's ten models) adding its measured set-up and its resume-state saves: one every
    ``RESUME_STATE_MINUTES`` of training and one after the last epoch. The set-up is a lower
    bound: it is timed in a process whose cuDNN and compiler caches are already warm. Not
    counted: each job's start (Python, reading its slices onto the device), which no run here
    measures."""
    measured = RESULTS.get("training", {})
    if toy:
        training = {"512x512": measured.get(sizes[0]), "608x416": measured.get(sizes[-1])}
    else:
        training = {size: measured.get(size) for size in ("512x512", "608x416")}
    inference = RESULTS.get("prediction and Grad-CAM", {})

    def value_of(size, path, key="images_per_s"):
        row = training.get(size)
        return row.get(path, {}).get(key) if isinstance(row, dict) else None

    def speedup_at(size):
        eager, compiled = value_of(size, "d"), value_of(size, "d_compiled")
        return compiled / eager if eager and compiled else None

    def fixed_cost(key, size, path):
        """A fused path's set-up or saving seconds at ``size``, else at the other size (the
        states are saved at one size only)."""
        other = "608x416" if size == "512x512" else "512x512"
        value = value_of(size, path, key)
        return value if value is not None else value_of(other, path, key)

    hours: dict = {"eager": {}, "compiled": {}}
    setups: dict = {"eager": {}, "compiled": {}}  # GPU-hours of the jobs' set-up
    saving: dict = {"eager": {}, "compiled": {}}  # ... and of their resume saves
    every_epoch = {}  # what saving after every epoch, as before, would take
    notes = set()
    for dataset, (images, epochs, size) in PROTOCOL.items():
        other = "608x416" if size == "512x512" else "512x512"
        eager = value_of(size, "d")
        if eager is None and value_of(other, "d"):  # the two sizes differ by 3.5 % in pixels
            eager = value_of(other, "d")
            notes.add(f"{size} eager rate taken from {other}")
        compiled = value_of(size, "d_compiled")
        speedup = speedup_at(size) or speedup_at(other)
        if compiled is None and eager and speedup:  # compile was not timed at this size
            compiled = eager * speedup
            notes.add(f"compile speed-up x{speedup:.2f} at {other} applied to {size}")
        predict_rate = inference.get("predict_images_per_s")
        if not eager or not predict_rate:
            print(f"  {dataset}: no measured rate at {size}")
            continue
        pixels = math.prod(int(v) for v in size.split("x")) / (512 * 512)
        train_images = epochs * STEP_IMAGES * MODELS * REGIMES
        monitor = epochs * MONITOR * MODELS * REGIMES / 3  # forward only: a third of a step
        predicted = images * TEST_SHARE * MODELS * pixels  # measured at 512x512
        line = f"  {dataset:9s}"
        save_s = fixed_cost("save_s", size, "d")
        if save_s is None:
            notes.add("no resume-state save timed: saves not counted")
        for name, rate, path in (("eager", eager, "d"), ("compiled", compiled, "d_compiled")):
            if rate:
                job_s = (train_images + monitor) / rate / REGIMES  # one regime's training job
                saves = saves_in_job(epochs, job_s / epochs, 60 * RESUME_STATE_MINUTES)
                setup_s = fixed_cost("setup_s", size, path) or 0.0
                setups[name][dataset] = REGIMES * setup_s / 3600
                saving[name][dataset] = REGIMES * saves * (save_s or 0.0) / 3600
                fixed = 3600 * (setups[name][dataset] + saving[name][dataset])
                hours[name][dataset] = (
                    (train_images + monitor) / rate + predicted / predict_rate + fixed
                ) / 3600
                line += f" {hours[name][dataset]:6.2f} GPU-hours {name},"
        if save_s is not None:
            every_epoch[dataset] = REGIMES * epochs * save_s / 3600
        print(f"{line} ({train_images:,} training images)")
    total = sum(hours["eager"].values())
    print(f"  full protocol: {total:.2f} GPU-hours on this device, fused models eager")
    out = {"gpu_hours": hours["eager"], "total": total, "notes": sorted(notes)}
    if hours["compiled"] and set(hours["compiled"]) == set(hours["eager"]):  # no partial sum
        out["gpu_hours_compiled"] = hours["compiled"]
        out["total_compiled"] = sum(hours["compiled"].values())
        print(f"  full protocol: {out['total_compiled']:.2f} GPU-hours compiled")
    for name in ("eager", "compiled"):
        if setups[name]:
            suffix = "" if name == "eager" else "_compiled"
            out["setup_hours" + suffix] = sum(setups[name].values())
            out["saving_hours" + suffix] = sum(saving[name].values())
            print(
                f"  of which {name}: the training jobs' set-up {out['setup_hours' + suffix]:.2f}, "
                f"their resume saves {out['saving_hours' + suffix]:.2f} (every "
                f"{RESUME_STATE_MINUTES} min and after the last epoch)"
            )
    cold = RESULTS.get("cold training job", {})
    if "fixed_s" in cold:
        jobs = REGIMES * len(PROTOCOL)
        out["cold_setup_hours"] = jobs * cold["fixed_s"] / 3600
        print(
            f"  (if every one of the {jobs} training jobs started as cold as a fresh node: "
            f"{out['cold_setup_hours']:.2f} GPU-hours beside their epochs, a last save each "
            "included; not added to the total)"
        )
        if "fixed_s_cached" in cold:
            # the split regimes' jobs may all start at once and compile; the depletion regimes'
            # wait for the split selection and find their kernels in the project's cache
            first = len(PROTOCOL) * SPLIT_REGIMES
            later = jobs - first
            out["cached_setup_hours"] = (
                first * cold["fixed_s"] + later * cold["fixed_s_cached"]
            ) / 3600
            print(
                f"  (the same on fresh nodes with the project's compile cache, if the {first} "
                f"split jobs start at once, cold, and the {later} depletion jobs find their "
                f"kernels: {out['cached_setup_hours']:.2f} GPU-hours, a lower bound)"
            )
    if every_epoch:
        out["saving_every_epoch_hours"] = sum(every_epoch.values())
        print(f"  (saving after every epoch would take {out['saving_every_epoch_hours']:.2f})")
    for note in sorted(notes):
        print(f"  ({note})")
    return out


def saves_in_job(epochs: int, epoch_s: float, every_s: float) -> int:
    """How many times a training job of ``epochs`` epochs of ``epoch_s`` seconds saves its
    resume states, by the workflow's own :class:`SaveSchedule`."""
    now = [0.0]
    schedule, saves = SaveSchedule(every_s, clock=lambda: now[0]), 0
    for epoch in range(1, epochs + 1):
        now[0] += epoch_s
        if schedule.due(last_epoch=epoch == epochs):
            schedule.saved()
            saves += 1
    return saves


def save_results() -> None:
    """RESULTS as ``OUT/gpu_check.json``, replaced atomically."""
    if OUT is not None:
        write_text(json.dumps(RESULTS, indent=1, default=str), OUT / "gpu_check.json")


def summary() -> None:
    print("\n== summary")
    for size, rows in RESULTS.get("training", {}).items():
        if not isinstance(rows, dict) or "error" in rows:
            continue
        cells = [
            f"{k} {v['images_per_s']:.0f} img/s ({v['mfu']:.0%})"
            for k, v in rows.items()
            if isinstance(v, dict) and "images_per_s" in v
        ]
        print(f"  {size}: " + ", ".join(cells))
        for ratio in lanes_ratios(rows):
            print(f"  {size}: {ratio}")
    projection = RESULTS.get("projection", {})
    if "total" in projection:
        print(f"  full protocol: {projection['total']:.2f} GPU-hours (fused models, eager)")
    if "total_compiled" in projection:
        print(f"  full protocol: {projection['total_compiled']:.2f} GPU-hours with torch.compile")
    failed = [
        name for name, value in RESULTS.items() if isinstance(value, dict) and "error" in value
    ]
    print(f"  sections failed: {failed or 'none'}")


def lanes_ratios(rows) -> list[str]:
    """The two-regime experiment against a regime's lanes and against one model at the filling
    batch, each in the same mode (eager or compiled)."""
    rate = {
        k: v["images_per_s"] for k, v in rows.items() if isinstance(v, dict) and "images_per_s" in v
    }
    found = []
    for suffix in ("", "_compiled"):
        double = rate.get("d2x" + suffix)
        if double is None:
            continue
        against = [
            f"x{double / rate[k + suffix]:.2f} {name}"
            for k, name in (("d", "one regime's models"), ("c", "one model at the filling batch"))
            if rate.get(k + suffix)
        ]
        if against:
            found.append(f"d2x{suffix} (two regimes' models) " + ", ".join(against))
    return found


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="toy sizes (the default on a CPU)")
    parser.add_argument(
        "--compile", action="store_true", help="also time and profile torch.compile"
    )
    parser.add_argument(
        "--compile-forward",
        action="store_true",
        help="also time the network's forward pass compiled (an experiment for prediction)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json")
    parser.add_argument("--sizes", nargs="+", default=None, help="e.g. 512x512 (default: both)")
    parser.add_argument("--paths", nargs="+", default=None, help="training paths to time")
    parser.add_argument(
        "--predict-images", type=positive, default=None, help="test images of the predict job"
    )
    parser.add_argument(
        "--demo", type=Path, default=None, help="demo split1.csv, store/, encoder.pth"
    )
    parser.add_argument(
        "--cold-job",
        action="store_true",
        help="also time a training job in a fresh process, compiled on a GPU",
    )
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    toy = args.toy or device.type != "cuda"
    torch.backends.cudnn.benchmark = True
    sizes = args.sizes or (["64x64", "96x64"] if toy else ["512x512", "608x416"])
    global PATHS, OUT
    PATHS = set(args.paths) if args.paths else None
    OUT = args.out
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        device_section(device)
        peak_section(device, toy)
        training_section(device, toy, sizes, work, args.compile)
        profile_section(device, toy, sizes[0], work)
        if args.compile:
            compiled_profile_section(device, toy, sizes[0], work)
        inference_section(device, toy, work, args.predict_images, args.compile_forward)
        demo_section(device, args.demo, work, toy, args.compile)
        if args.cold_job:
            cold_job_section(device, toy, sizes[0], work)
        projection_section(sizes, toy)
    summary()
    failed = [v for v in RESULTS.values() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
