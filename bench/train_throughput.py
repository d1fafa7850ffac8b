"""Training-step throughput of the VGG16-UNet: fp32 baseline vs channels_last vs bf16 autocast.

Prints images/s per mode and the ratio to the fp32 NCHW baseline measured in the same run
(machines are noisy; only ratios within one run are comparable). bf16 runs on CUDA only.

    python bench/train_throughput.py --width 1.0 --height 416 --width-px 608 --batch 8
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from synergyseg.model import ModelSpec, VGGUNet, upsample_logits


def images_per_second(model, x, y, steps: int, bf16: bool, channels_last: bool) -> float:
    device = x.device
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    optimiser = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)

    def step():
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = upsample_logits(model(x), tuple(y.shape[-2:]))
            loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        optimiser.step()

    for _ in range(2):  # warm-up (cuDNN autotuning, allocator)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-width", type=float, default=1.0)
    parser.add_argument("--variant", default="default")
    parser.add_argument("--height", type=int, default=416)
    parser.add_argument("--width-px", type=int, default=608)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.height, args.width_px, device=device)
    y = torch.randint(0, 2, (args.batch, args.height, args.width_px), device=device)
    modes = [("fp32 NCHW (baseline)", False, False), ("fp32 channels_last", False, True)]
    if device.type == "cuda":
        modes.append(("bf16 autocast + channels_last", True, True))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {device} ({name}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, variant {args.variant}, "
        f"width {args.model_width}, input {args.width_px}x{args.height}, batch {args.batch}"
    )
    baseline = None
    for name, bf16, channels_last in modes:
        model = VGGUNet(ModelSpec(args.variant, args.model_width)).to(device)
        rate = images_per_second(model, x, y, args.steps, bf16, channels_last)
        baseline = baseline or rate
        print(f"{name:32s} {rate:10.2f} images/s   x{rate / baseline:5.2f}")


if __name__ == "__main__":
    main()
