"""Offline stand-in for ImageNet: pretrain a (narrow) VGG16 encoder on a natural-image-like task.

The demo cannot download ImageNet weights, yet its TII models must still be *transfer* from
another domain, never a relabelled LMI. This module generates colour images with natural-image
statistics (1/f "pink" noise backgrounds, shading) each holding one object of a random shape
and colour, trains the VGG16 features plus a small classifier to tell in which quadrant the
object lies (which needs object-versus-background features, the ones segmentation uses; shape
recognition proved too slow to learn on two CPU cores), and saves
the result as a torchvision-style VGG16 state dict that TII loads through the same path as the
real ImageNet file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from synergyseg.atomic import atomic_path
from synergyseg.model import scaled, vgg16_features, vgg_layers
from synergyseg.preprocess import normalise

log = logging.getLogger(__name__)
SHAPES = ("ellipse", "rectangle", "triangle", "cross")


@dataclass(frozen=True)
class PretrainSpec:
    """The ``pretrained.pretrain`` config section."""

    width: float = 0.25
    n_images: int = 1200
    side: int = 48
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-3


def pink_noise(rng: np.random.Generator, side: int) -> np.ndarray:
    """RGB noise with a 1/f amplitude spectrum, the statistics of natural photographs."""
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side)))
    freq[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (
            rng.standard_normal((side, side)) + 1j * rng.standard_normal((side, side))
        ) / freq
        channel = np.real(np.fft.ifft2(spectrum))
        channels.append((channel - channel.mean()) / (channel.std() + 1e-8))
    return np.stack(channels, axis=-1)


def natural_like_image(
    rng: np.random.Generator, side: int, shape: int, quadrant: int | None = None
) -> np.ndarray:
    """One uint8 RGB picture: textured background, one object of class ``shape``, centred in
    ``quadrant`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) or anywhere."""
    base = rng.uniform(60, 190, 3)
    image = base + 20 * pink_noise(rng, side)
    colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
    if quadrant is None:
        centre = rng.uniform(0.3, 0.7, 2) * side
    else:  # (x, y) of the quadrant's centre, jittered
        centre = (
            np.array([0.25 + 0.5 * (quadrant % 2), 0.25 + 0.5 * (quadrant // 2)])
            + rng.uniform(-0.08, 0.08, 2)
        ) * side
    size = rng.uniform(0.22, 0.38) * side
    angle = rng.uniform(0, np.pi)
    canvas = np.ascontiguousarray(image, dtype=np.float64)
    c = tuple(int(v) for v in centre)
    if SHAPES[shape] == "ellipse":
        axes = (int(size), int(size * rng.uniform(0.5, 1.0)))
        cv2.ellipse(canvas, c, axes, float(np.degrees(angle)), 0, 360, colour, -1)
    else:
        if SHAPES[shape] == "rectangle":
            corners = np.array([[-1, -0.6], [1, -0.6], [1, 0.6], [-1, 0.6]])
        elif SHAPES[shape] == "triangle":
            corners = np.array([[0, -1], [0.9, 0.7], [-0.9, 0.7]])
        else:
            t = 0.3
            corners = np.array(
                [
                    [-t, -1],
                    [t, -1],
                    [t, -t],
                    [1, -t],
                    [1, t],
                    [t, t],
                    [t, 1],
                    [-t, 1],
                    [-t, t],
                    [-1, t],
                    [-1, -t],
                    [-t, -t],
                ]
            )
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (corners @ rot.T * size + centre).astype(np.int32)
        cv2.fillPoly(canvas, [points], colour)
    shading = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.3), side)
    canvas *= shading[:, None, None] if rng.random() < 0.5 else shading[None, :, None]
    canvas += rng.normal(0, 6, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8)


class EncoderClassifier(nn.Module):
    """VGG16 features *with BatchNorm* + global average pooling + linear layer.

    A deep plain VGG barely leaves chance level in a few CPU epochs; with BatchNorm it learns
    the task quickly. The BatchNorm layers are folded into the convolutions afterwards
    (:func:`folded_vgg_state`), giving weights for the plain VGG16 layout that TII loads.
    """

    def __init__(self, width: float, n_classes: int):
        super().__init__()
        self.features = vgg_layers(width, batch_norm=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(scaled(512, width), n_classes)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def folded_vgg_state(model: EncoderClassifier, width: float) -> dict[str, torch.Tensor]:
    """Fold each eval-mode BatchNorm into its convolution; return plain-VGG16 ``features.N`` keys.

    conv→BN computes gamma·(W·x + b − mu)/sqrt(var + eps) + beta, i.e. a convolution with
    W' = W·s and b' = (b − mu)·s + beta, where s = gamma/sqrt(var + eps).
    """
    plain = vgg16_features(width, blocks=5)
    convs_bn = [m for m in model.features if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    plain_convs = [i for i, m in enumerate(plain) if isinstance(m, nn.Conv2d)]
    state = {}
    for index, (conv, bn) in zip(
        plain_convs, zip(convs_bn[::2], convs_bn[1::2], strict=True), strict=True
    ):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        state[f"features.{index}.weight"] = (conv.weight * scale.view(-1, 1, 1, 1)).detach().clone()
        state[f"features.{index}.bias"] = (
            ((conv.bias - bn.running_mean) * scale + bn.bias).detach().clone()
        )
    state["classifier.weight"] = model.classifier.weight.detach().clone()
    state["classifier.bias"] = model.classifier.bias.detach().clone()
    return state


def pretrain_encoder(spec: PretrainSpec, seed: int, out: str | Path, threads: int = 1) -> dict:
    """Train the encoder on the shape task; save the state dict atomically; return accuracies.

    The result depends on ``threads``: on the CPU each weight gradient is summed in
    per-thread parts, so another thread count rounds differently and trains another encoder.
    """
    torch.set_num_threads(threads)
    log.info("pretraining on %d CPU thread(s)", threads)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, spec.n_images)  # the quadrant holding the object
    images = np.stack(
        [natural_like_image(rng, spec.side, int(rng.integers(len(SHAPES))), int(q)) for q in labels]
    )
    x = normalise(torch.from_numpy(images).permute(0, 3, 1, 2))
    y = torch.from_numpy(labels)
    n_val = max(1, spec.n_images // 10)
    torch.manual_seed(seed)
    model = EncoderClassifier(spec.width, 4)
    optimiser = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    accuracy = float("nan")
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = torch.randperm(len(x) - n_val, generator=generator) + n_val
        for start in range(0, len(order), spec.batch_size):
            batch = order[start : start + spec.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x[:n_val]).argmax(1) == y[:n_val]).float().mean())
        log.info("pretrain epoch %d/%d: held-out accuracy %.3f", epoch, spec.epochs, accuracy)
    with atomic_path(out) as tmp:
        torch.save(folded_vgg_state(model, spec.width), tmp)
    return {"held_out_accuracy": accuracy, "chance": 0.25}
