"""Training throughput of the VGG16-UNet on one device, every path side by side in one run.

Paths: (a) a plain fp32 PyTorch loop fed by a standard DataLoader; (b) today's workflow step
(host-resident batches, bf16 + channels_last, one host sync per step); (c) the device-resident
step (no sync, cudnn.benchmark, foreach Adadelta) at batch 2 and at larger batches; (d) M models
at batch 2 fused with torch.func (vmap over stacked weights) and on M CUDA streams.

Prints images/s, ratio to (a), and model FLOP utilisation (MFU) against the bf16 matmul peak
measured in the same run. Writes the numbers as JSON with --json.

    python bench/train_speed.py --sizes 512x512 608x416
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from synergyseg.model import ModelSpec, VGGUNet, upsample_logits
from synergyseg.preprocess import normalise


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, n: int = 8192, reps: int = 20) -> float:
    """Measured bf16 matmul FLOP/s (fp32 on the CPU) on random data."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def train_flops_per_image(spec, height, width, device) -> float:
    model = VGGUNet(spec).to(device)
    x = torch.randn(1, 3, height, width, device=device)
    y = torch.randint(0, 2, (1, height, width), device=device)
    with FlopCounterMode(display=False) as counter:
        loss = F.cross_entropy(upsample_logits(model(x), (height, width)), y)
        loss.backward()
    return float(counter.get_total_flops())


def make_data(n, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=g)
    masks = torch.randint(0, 2, (n, height, width), dtype=torch.uint8, generator=g)
    return images, masks


def loss_of(model, x, y):
    return F.cross_entropy(upsample_logits(model(x), tuple(y.shape[-2:])).float(), y)


def timed(run, steps, warmup, device):
    for _ in range(warmup):
        run()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        run()
    sync(device)
    return time.perf_counter() - start


def plain_loop(spec, images, masks, device, steps, batch=2) -> float:
    """(a) fp32 NCHW, DataLoader with workers and pinned memory, loss.item() every step."""
    model = VGGUNet(spec).to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loader = DataLoader(
        TensorDataset(images, masks),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=2,
        pin_memory=device.type == "cuda",
        persistent_workers=True,
    )
    batches = iter(())

    def step():
        nonlocal batches
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        x = normalise(xb.to(device, non_blocking=True))
        y = yb.to(device, non_blocking=True).long()
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        loss.item()

    return steps * batch / timed(step, steps, 3, device)


def workflow_step(spec, images, masks, device, steps, batch=2) -> float:
    """(b) the step of today's train_model: host batches, bf16 + channels_last, float(loss)."""
    model = VGGUNet(spec).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    g = torch.Generator().manual_seed(1)

    def step():
        index = torch.randint(0, len(images), (batch,), generator=g)
        x = normalise(images[index].to(device, non_blocking=True))
        x = x.contiguous(memory_format=torch.channels_last)
        y = masks[index].to(device, non_blocking=True).long()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        float(loss.detach())

    return steps * batch / timed(step, steps, 3, device)


def resident_step(spec, images, masks, device, steps, batch, compile_model=False):
    """(c) data on the device, indices drawn on the device, loss summed there, no host sync."""
    images, masks = images.to(device), masks.to(device)
    model = VGGUNet(spec).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7, foreach=True)
    forward = torch.compile(model) if compile_model else model
    total = torch.zeros((), device=device)
    n = len(images)

    def step():
        index = torch.randint(0, n, (batch,), device=device)
        x = normalise(images[index]).contiguous(memory_format=torch.channels_last)
        y = masks[index].long()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_of(forward, x, y)
        loss.backward()
        opt.step()
        total.add_(loss.detach())

    started = time.perf_counter()
    step()
    sync(device)
    first = time.perf_counter() - started
    return steps * batch / timed(step, steps, 3, device), first


def fused_vmap(spec, images, masks, device, steps, n_models, batch=2):
    """(d) n_models networks as one: torch.func.vmap over stacked weights (grouped convs)."""
    from torch.func import functional_call, stack_module_state, vmap

    images, masks = images.to(device), masks.to(device)
    models = [VGGUNet(spec).to(device) for _ in range(n_models)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    del models

    def one(p, b, x, y):
        return loss_of(lambda t: functional_call(base, (p, b), (t,)), x, y)

    losses = vmap(one)
    opt = torch.optim.Adadelta(params.values(), lr=1.0, rho=0.95, eps=1e-7, foreach=True)
    total = torch.zeros(n_models, device=device)
    n = len(images)

    def step():
        index = torch.randint(0, n, (n_models, batch), device=device)
        x = normalise(images[index.flatten()]).view(n_models, batch, 3, *images.shape[-2:])
        y = masks[index].long()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = losses(params, buffers, x, y)
        loss.sum().backward()
        opt.step()
        total.add_(loss.detach())

    return steps * batch * n_models / timed(step, steps, 2, device)


def streams(spec, images, masks, device, steps, n_models, batch=2):
    """(d') n_models separate networks, each stepping on its own CUDA stream."""
    images, masks = images.to(device), masks.to(device)
    models = [
        VGGUNet(spec).to(device).to(memory_format=torch.channels_last) for _ in range(n_models)
    ]
    opts = [
        torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.95, eps=1e-7, foreach=True)
        for m in models
    ]
    lanes = [torch.cuda.Stream(device) for _ in range(n_models)]
    n = len(images)

    def step():
        current = torch.cuda.current_stream(device)
        for model, opt, lane in zip(models, opts, lanes, strict=True):
            lane.wait_stream(current)
            with torch.cuda.stream(lane):
                index = torch.randint(0, n, (batch,), device=device)
                x = normalise(images[index]).contiguous(memory_format=torch.channels_last)
                y = masks[index].long()
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = loss_of(model, x, y)
                loss.backward()
                opt.step()
        for lane in lanes:
            current.wait_stream(lane)

    return steps * batch * n_models / timed(step, steps, 2, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["512x512", "608x416"])
    parser.add_argument("--model-width", type=float, default=1.0)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    spec = ModelSpec("default", args.model_width)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = matmul_peak(
        device, 8192 if device.type == "cuda" else 1024, 20 if device.type == "cuda" else 3
    )
    print(
        f"device {name}, torch {torch.__version__}, measured matmul peak {peak / 1e12:.1f} TFLOP/s",
        flush=True,
    )
    results = {"device": name, "torch": torch.__version__, "peak": peak, "sizes": {}}

    def save():
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(results, handle, indent=1)

    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        flops = train_flops_per_image(spec, height, width, device)
        images, masks = make_data(64, height, width)
        rows = {}
        results["sizes"][size] = {"flops_per_image": flops, "rows": rows}
        print(f"\n{size}: {flops / 1e9:.0f} GFLOP per training image", flush=True)

        def report(label, rate, extra="", rows=rows, flops=flops):
            rows[label] = rate
            base = rows.get("a plain fp32 + DataLoader, batch 2", rate)
            mfu = rate * flops / peak
            print(
                f"  {label:44s} {rate:8.1f} img/s  x{rate / base:5.2f}  MFU {mfu:6.1%} {extra}",
                flush=True,
            )
            save()

        steps = args.steps
        report("a plain fp32 + DataLoader, batch 2", plain_loop(spec, images, masks, device, steps))
        report("b workflow step today, batch 2", workflow_step(spec, images, masks, device, steps))
        rate, _ = resident_step(spec, images, masks, device, steps, 2)
        report("c resident, no sync, batch 2", rate)
        for batch in args.batches:
            try:
                rate, _ = resident_step(
                    spec, images, masks, device, max(4, steps * 2 // batch), batch
                )
                report(f"c resident, no sync, batch {batch}", rate)
            except torch.OutOfMemoryError:
                print(f"  batch {batch}: out of memory")
                torch.cuda.empty_cache()
        try:
            rate = fused_vmap(
                spec, images, masks, device, max(4, steps // args.models), args.models
            )
            report(f"d fused vmap x{args.models}, batch 2", rate)
        except Exception as error:  # noqa: BLE001 - a probe reports and goes on
            print(f"  fused vmap failed: {type(error).__name__}: {error}"[:400])
        if device.type == "cuda":
            rate = streams(spec, images, masks, device, max(4, steps // args.models), args.models)
            report(f"d streams x{args.models}, batch 2", rate)
        torch.cuda.empty_cache() if device.type == "cuda" else None

    if args.compile:
        width, height = (int(v) for v in args.sizes[0].split("x"))
        images, masks = make_data(64, height, width)
        try:
            rate, first = resident_step(
                spec, images, masks, device, args.steps, 2, compile_model=True
            )
            results["compiled_batch2"] = {"rate": rate, "first_step_s": first}
            print(
                f"\n{args.sizes[0]} compiled, batch 2: {rate:.1f} img/s (first step {first:.0f} s)"
            )
            save()
        except Exception as error:  # noqa: BLE001
            print(f"compile failed: {type(error).__name__}: {error}"[:400])


if __name__ == "__main__":
    main()
