"""Several models trained side by side on one device, each exactly as it would be trained alone.

A *lane* is one model under training (one dataset × regime × init × replicate): its network,
Adadelta optimiser, loss accumulator and history. Lanes share the job's one copy of the data
but nothing else, so each follows its own data order and its own updates; running several in
one process only saves the start-up, the data loading, and (on a GPU) idle hardware:

* on the CPU the lanes take turns, step by step; the result of each is bit-identical to
  training it alone;
* on a GPU each lane's whole training step (batch gather, forward, loss, backward, optimiser)
  is captured once as a CUDA graph and replayed on the lane's own stream, so one Python thread
  keeps many models busy and the small kernels of one model's batch of 2 run next to another's.
  Losses are summed on the device and read once per epoch: no host sync inside the step loop.

Why not one fused network (``torch.func.vmap`` over stacked weights, i.e. grouped
convolutions)? Measured on an H100 (docs/benchmarks.md) ten fused VGG16-UNets at batch 2 ran
slower than separate models: cuDNN's grouped convolutions are far from its dense ones.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from synergyseg.model import VGGUNet, upsample_logits
from synergyseg.training_data import EpochPlan, TrainingData

WARMUP_STEPS = 3  # before capture: cuDNN autotuning, allocator and optimiser state settle


def pixel_loss(model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pixel-wise 2-class cross-entropy of logits upsampled to the mask size (the paper's loss)."""
    logits = upsample_logits(model(images), tuple(masks.shape[-2:]))
    return F.cross_entropy(logits.float(), masks)


def adadelta(model: torch.nn.Module, device: torch.device) -> torch.optim.Adadelta:
    """Adadelta with the Keras defaults (lr 1.0, rho 0.95, eps 1e-7); capturable on a GPU so
    its step can live inside a CUDA graph. The multi-tensor (foreach) update, PyTorch's
    default on GPUs, is asked for on the CPU too: the same operations in the same order, so the
    same bits, with less per-tensor overhead (docs/benchmarks.md)."""
    return torch.optim.Adadelta(
        model.parameters(),
        lr=1.0,
        rho=0.95,
        eps=1e-7,
        capturable=device.type == "cuda",
        foreach=True,
    )


def load_optimiser_state(optimiser: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved optimiser state, keeping this device's settings: a state saved on another
    kind of device (a GPU job resumed on the CPU, or the reverse) carries that device's
    ``capturable`` flag, which PyTorch would restore with it and which cannot step here."""
    settings = [(group["capturable"], group["foreach"]) for group in optimiser.param_groups]
    optimiser.load_state_dict(state)
    for group, (own, foreach) in zip(optimiser.param_groups, settings, strict=True):
        group["capturable"], group["foreach"] = own, foreach
        for param in group["params"]:
            step = optimiser.state.get(param, {}).get("step")
            if own and step is not None:  # a capturable step counter lives beside its parameter
                optimiser.state[param]["step"] = step.to(param.device, torch.float32)


@dataclass
class Lane:
    """One model under training and what belongs to it alone."""

    model: VGGUNet
    optimiser: torch.optim.Optimizer
    device: torch.device
    history: list[dict] = field(default_factory=list)
    next_epoch: int = 1
    images_seen: int = 0

    def __post_init__(self):
        self.forward = self.model  # or its torch.compile'd twin: same weights, fused kernels
        self.loss_sum = torch.zeros((), device=self.device)
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_index: torch.Tensor | None = None
        self.static_flips: torch.Tensor | None = None

    def step(self, x: torch.Tensor, y: torch.Tensor, autocast) -> None:
        """One eager training step; the loss is added on the device, never read here."""
        self.optimiser.zero_grad(set_to_none=True)
        with autocast():
            loss = pixel_loss(self.forward, x, y)
        loss.backward()
        self.optimiser.step()
        self.loss_sum += loss.detach()

    def compile(self) -> None:
        """Run the network through torch.compile (Inductor fuses the elementwise work around
        cuDNN's convolutions). The weights stay the model's own, so checkpoints are unchanged;
        compilation happens in the first (warm-up) steps. Ten lanes are ten instances of one
        module class: dynamo's per-code cache must hold them all, or the last lanes would
        silently fall back to eager."""
        import torch._dynamo  # here, not at the top: importing dynamo costs every job 2 s

        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        # static shapes: a job has one batch shape (a second one, the monitoring sample's,
        # gets its own static graph); dynamo's automatic dynamic shapes would recompile for
        # symbolic sizes on the second shape it meets, a slower build of slower code
        self.forward = torch.compile(self.model, dynamic=False)

    def take_loss(self) -> float:
        """The summed batch losses since the last call (one host sync), then reset."""
        total = float(self.loss_sum)
        self.loss_sum.zero_()
        return total

    # --- CUDA graphs -----------------------------------------------------------------------

    def _snapshot(self) -> dict[str, torch.Tensor]:
        state = {f"m.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        for i, param in enumerate(self.model.parameters()):
            for key, value in self.optimiser.state.get(param, {}).items():
                if torch.is_tensor(value):
                    state[f"o.{i}.{key}"] = value.detach().clone()
        return state

    def _restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Put back the state from before the warm-up, into the same tensors the graph uses.
        Optimiser state the warm-up created is zeroed: a fresh Adadelta starts from zeros."""
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                value.copy_(snapshot[f"m.{key}"])
            for i, param in enumerate(self.model.parameters()):
                for key, value in self.optimiser.state.get(param, {}).items():
                    if torch.is_tensor(value):
                        saved = snapshot.get(f"o.{i}.{key}")
                        value.copy_(saved) if saved is not None else value.zero_()
        self.loss_sum.zero_()

    def capture(self, data: TrainingData, batch_size: int, augment: bool, autocast) -> None:
        """Record one whole training step as a CUDA graph reading ``static_index``/``flips``.

        The warm-up steps that capture needs change the weights; they are undone, so the
        first replayed step is the model's real first step.
        """
        self.static_index = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        self.static_flips = (
            torch.zeros(batch_size, 2, dtype=torch.bool, device=self.device) if augment else None
        )

        def body():
            x, y = data.batch(self.static_index, self.static_flips)
            self.step(x, y, autocast)

        snapshot = self._snapshot()
        main = torch.cuda.current_stream(self.device)
        try:
            self.stream.wait_stream(main)
            with torch.cuda.stream(self.stream):
                for _ in range(WARMUP_STEPS):
                    body()
            main.wait_stream(self.stream)
            self.optimiser.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                body()
            self.graph = graph
        finally:  # captured or not, the model is put back as it was
            main.wait_stream(self.stream)
            torch.cuda.synchronize(self.device)
            self._restore(snapshot)


def autocast_factory(device: torch.device, precision: str, graphs: bool):
    """A callable giving the autocast context of ``precision`` (bf16 or fp32)."""

    def autocast():
        if precision != "bf16":
            return contextlib.nullcontext()
        # inside CUDA graphs the autocast weight cache must be off (PyTorch's graph rules)
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not graphs)

    return autocast


def run_epoch(lanes: list[Lane], plans: list[EpochPlan], data: TrainingData, autocast) -> None:
    """Every step of one epoch for every lane, interleaved step by step, without host syncs."""
    if not lanes:
        return
    device = lanes[0].device
    steps = plans[0].index.shape[0]
    if device.type != "cuda":
        for s in range(steps):
            for lane, plan in zip(lanes, plans, strict=True):
                flips = plan.flips[s] if plan.flips is not None else None
                lane.step(*data.batch(plan.index[s], flips), autocast)
                lane.images_seen += plan.index.shape[1]
        return
    main = torch.cuda.current_stream(device)
    # Data on the device is gathered with device indices; data read from the store per batch
    # needs them on the host, where a device index would cost a sync every step.
    where = device if data.resident else torch.device("cpu")
    step_inputs = [
        (
            plan.index.to(where, non_blocking=True),
            None if plan.flips is None else plan.flips.to(device, non_blocking=True),
        )
        for plan in plans
    ]
    for lane in lanes:
        lane.stream.wait_stream(main)
    for s in range(steps):
        for lane, (index, flips) in zip(lanes, step_inputs, strict=True):
            with torch.cuda.stream(lane.stream):
                step_flips = None if flips is None else flips[s]
                if lane.graph is not None:
                    lane.static_index.copy_(index[s], non_blocking=True)
                    if step_flips is not None:
                        lane.static_flips.copy_(step_flips, non_blocking=True)
                    lane.graph.replay()
                else:
                    lane.step(*data.batch(index[s], step_flips), autocast)
    for lane, plan in zip(lanes, plans, strict=True):
        main.wait_stream(lane.stream)
        lane.images_seen += plan.index.numel()


def monitor_loss(lane: Lane, data: TrainingData, positions, autocast, batch_size: int = 16):
    """Mean loss over the fixed monitoring images, in eval mode (running BN statistics)."""
    if len(positions) == 0:
        return float("nan")
    lane.model.eval()
    total = torch.zeros((), device=lane.device)
    with torch.no_grad(), autocast():
        for start in range(0, len(positions), batch_size):
            index = torch.as_tensor(positions[start : start + batch_size])
            x, y = data.batch(index)
            total += pixel_loss(lane.model, x, y) * len(index)
    lane.model.train()
    return float(total) / len(positions)


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
