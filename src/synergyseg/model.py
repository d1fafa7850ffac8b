"""The VGG16-UNet of the study, with ImageNet (TII) or random (LMI) initial weights.

``default`` replicates the Keras library the paper used (image-segmentation-keras ``vgg_unet``):
encoder = VGG-16 blocks 1–4 (torchvision ``vgg16().features[:24]``); the pooled outputs of
blocks 1–3 (1/2, 1/4, 1/8) are the skips; decoder = [conv3x3 → ReLU → BN] at 512, 256, 128, 64
channels with nearest x2 upsampling; a 3x3 head gives 2 logits at half the input resolution,
which :func:`upsample_logits` brings to the input size for the loss and every metric.

``full`` uses all five VGG blocks and decodes to full resolution (TernausNet style).

New layers, and the whole network for LMI, use Glorot-uniform weights with zero bias (Keras'
default, not PyTorch's); BatchNorm uses Keras' eps 1e-3 and momentum 0.99 (PyTorch 0.01);
``bn_momentum`` lets a short demo run use PyTorch's 0.1 so its running statistics converge.
``width`` scales every channel count for the CPU demo; only width 1 accepts ImageNet weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("default", "full")
# VGG-16's convolution widths ("M" = 2x2 max pooling), as torchvision's ``cfgs["D"]``. The
# layers are built here rather than imported: importing torchvision's model zoo also imports
# torch._dynamo, two seconds added to every job; tests check the layers equal torchvision's.
VGG16_LAYERS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)
# index just past the pooling layer of each VGG-16 block in torchvision's ``features``
BLOCK_ENDS = (5, 10, 17, 24, 31)
DECODER_CHANNELS = {"default": (512, 256, 128, 64), "full": (512, 256, 128, 64, 32)}


@dataclass(frozen=True)
class ModelSpec:
    """Architecture settings (the ``model`` config section)."""

    variant: str = "default"
    width: float = 1.0
    n_classes: int = 2
    bn_momentum: float = 0.01

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"model variant must be one of {VARIANTS}, got {self.variant!r}")
        if not self.width > 0:
            raise ValueError(f"model width must be positive, got {self.width}")


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def vgg_layers(width: float = 1.0, batch_norm: bool = False) -> nn.Sequential:
    """torchvision's ``make_layers(cfgs["D"], batch_norm)``: conv3x3 (→ BatchNorm) → ReLU per
    width, 2x2 max pooling per "M", channel counts scaled by ``width``."""
    layers: list[nn.Module] = []
    channels = 3
    for value in VGG16_LAYERS:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out = scaled(value, width)
        layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        channels = out
    return nn.Sequential(*layers)


def vgg16_features(width: float = 1.0, blocks: int = 5) -> nn.Sequential:
    """torchvision's VGG-16 ``features`` (same layer indices, so state-dict keys match),
    channel counts scaled by ``width``, truncated after ``blocks`` blocks."""
    return vgg_layers(width)[: BLOCK_ENDS[blocks - 1]]


def glorot_(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class DecoderBlock(nn.Sequential):
    """conv3x3 → ReLU → BatchNorm, as in the Keras library's U-Net decoder."""

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float = 0.01):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels, eps=1e-3, momentum=bn_momentum),
        )


class VGGUNet(nn.Module):
    """VGG16 encoder + U-Net decoder; ``forward`` returns logits (N, 2, h, w)."""

    def __init__(self, spec: ModelSpec = ModelSpec()):
        super().__init__()
        self.spec = spec
        n_blocks = 4 if spec.variant == "default" else 5
        self.encoder = vgg16_features(spec.width, n_blocks)
        self.block_ends = BLOCK_ENDS[:n_blocks]
        enc = [scaled(c, spec.width) for c in (64, 128, 256, 512, 512)][:n_blocks]
        dec = [scaled(c, spec.width) for c in DECODER_CHANNELS[spec.variant]]
        if spec.variant == "default":
            # f4 → conv512 → up, ⊕f3 → conv256 → up, ⊕f2 → conv128 → up, ⊕f1 → conv64 → head
            ins = [enc[3], dec[0] + enc[2], dec[1] + enc[1], dec[2] + enc[0]]
        else:
            # f5 → up ⊕f4 → conv512 → up ⊕f3 → 256 → up ⊕f2 → 128 → up ⊕f1 → 64 → up → 32 → head
            ins = [enc[4] + enc[3], dec[0] + enc[2], dec[1] + enc[1], dec[2] + enc[0], dec[3]]
        self.decoder = nn.ModuleList(
            DecoderBlock(i, o, spec.bn_momentum) for i, o in zip(ins, dec, strict=True)
        )
        self.head = nn.Conv2d(dec[-1], spec.n_classes, 3, padding=1)
        glorot_(self)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pooled outputs of each encoder block (1/2, 1/4, 1/8, 1/16[, 1/32])."""
        levels, start = [], 0
        for end in self.block_ends:
            x = self.encoder[start:end](x)
            levels.append(x)
            start = end
        return levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.encode(x)
        up = upsample_nearest2x
        if self.spec.variant == "default":
            f1, f2, f3, f4 = levels
            o = self.decoder[0](f4)
            o = self.decoder[1](torch.cat([up(o), f3], 1))
            o = self.decoder[2](torch.cat([up(o), f2], 1))
            o = self.decoder[3](torch.cat([up(o), f1], 1))
        else:
            f1, f2, f3, f4, f5 = levels
            o = self.decoder[0](torch.cat([up(f5), f4], 1))
            o = self.decoder[1](torch.cat([up(o), f3], 1))
            o = self.decoder[2](torch.cat([up(o), f2], 1))
            o = self.decoder[3](torch.cat([up(o), f1], 1))
            o = self.decoder[4](up(o))
        return self.head(o)


def upsample_nearest2x(tensor: torch.Tensor) -> torch.Tensor:
    """The decoder's nearest x2 upsampling: a broadcast copy (:func:`nearest_by_broadcast`)
    on CUDA, ``F.interpolate`` on the CPU (and any other device); the same values.

    Why two ways. On CUDA, autocast runs ``upsample_nearest2d`` in fp32, so every decoder
    concatenation came out fp32, was cast to bf16 for the next convolution and back in the
    backward pass; and under torch.compile that backward pass is a scatter into zeros. The
    broadcast copy stays in the tensor's dtype and its backward pass sums each 2x2 block of
    the gradient: on an H200 a regime's ten models trained 1.12x faster eager and 1.08x
    compiled (docs/benchmarks.md). The two sum a block's gradient in a different order (about
    1e-6 apart in fp32), so the CPU keeps ``F.interpolate``: CPU training stays bit-identical
    to earlier versions.
    """
    if tensor.device.type != "cuda":
        return F.interpolate(tensor, scale_factor=2, mode="nearest")
    return nearest_by_broadcast(tensor)


def nearest_by_broadcast(tensor: torch.Tensor) -> torch.Tensor:
    """Nearest x2 upsampling of an (N, C, H, W) tensor as a broadcast copy, in the tensor's
    own dtype and memory layout (channels_last, as training runs, or contiguous), so that the
    concatenation after it needs no relayout."""
    n, c, h, w = tensor.shape
    if tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous():
        nhwc = tensor.permute(0, 2, 3, 1)  # a contiguous view
        wide = nhwc[:, :, None, :, None, :].expand(n, h, 2, w, 2, c).reshape(n, 2 * h, 2 * w, c)
        return wide.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    wide = tensor[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)
    return wide.contiguous()  # reshape gives a view, not a copy, where h = w = 1


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of (half-resolution) logits to the input size."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def encoder_state(state_dict: dict[str, torch.Tensor], encoder: nn.Sequential, source: str) -> dict:
    """Pick the encoder's tensors out of a torchvision VGG16 state dict, strictly.

    Keys are torchvision's (``features.N.weight``); ``classifier.*`` (the ImageNet head) is
    dropped on purpose. Anything else missing, unexpected or of another shape is an error that
    names ``source`` — a silently half-loaded encoder would make TII a mislabelled LMI.
    """
    wanted = {f"features.{k}": v for k, v in encoder.state_dict().items()}
    given = {k: v for k, v in state_dict.items() if not k.startswith("classifier.")}
    deeper = {k for k in given if k.startswith("features.") and k not in wanted}
    unused_blocks = {k for k in deeper if int(k.split(".")[1]) >= len(encoder)}
    missing = sorted(set(wanted) - set(given))
    unexpected = sorted(set(given) - set(wanted) - unused_blocks)
    if missing or unexpected:
        raise ValueError(
            f"{source}: not a VGG16 encoder state dict "
            f"(missing {missing[:4]}{'…' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{'…' if len(unexpected) > 4 else ''})"
        )
    for key, tensor in wanted.items():
        if given[key].shape != tensor.shape:
            raise ValueError(
                f"{source}: {key} has shape {tuple(given[key].shape)}, the encoder needs "
                f"{tuple(tensor.shape)} (ImageNet weights fit width 1.0 only)"
            )
    return {k.removeprefix("features."): given[k] for k in wanted}


def build_model(
    spec: ModelSpec, init: str, pretrained: dict | None = None, source: str = ""
) -> VGGUNet:
    """TII: encoder from ``pretrained`` (a torchvision-style VGG16 state dict); LMI: random."""
    model = VGGUNet(spec)
    if init == "tii":
        if pretrained is None:
            raise ValueError("TII needs pretrained encoder weights")
        model.encoder.load_state_dict(encoder_state(pretrained, model.encoder, source), strict=True)
    elif init != "lmi":
        raise ValueError(f"init must be 'tii' or 'lmi', got {init!r}")
    return model
