"""Grad-CAM: a hand-derived linear case, agreement with pytorch-grad-cam, eq. 2 and eq. 3."""

from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
from torch import nn

from synergyseg.cam import (
    explain_images,
    grad_cam,
    model_cams,
    replicate_average,
    resolve_layer,
)
from synergyseg.cam_files import read_cams
from synergyseg.checkpoints import load_checkpoint
from synergyseg.errors import InputDataError
from synergyseg.manifests import read_split
from synergyseg.masks import replicate_intersection
from synergyseg.model import ModelSpec, VGGUNet, upsample_logits
from synergyseg.predict import probabilities
from synergyseg.store import SliceStore, manifest_rows


def linear_net(stride: int = 1, head_bias=(0.0, 0.0)) -> nn.Sequential:
    """features: conv (3→4, kernel = stride), head: 1x1 conv (4→2) — logits are linear in A."""
    torch.manual_seed(3)
    net = nn.Sequential(
        OrderedDict(
            features=nn.Conv2d(3, 4, kernel_size=stride, stride=stride),
            head=nn.Conv2d(4, 2, kernel_size=1),
        )
    )
    with torch.no_grad():
        net.head.bias.copy_(torch.tensor(head_bias))
    return net.eval()


def hand_cam(net: nn.Sequential, x: torch.Tensor, c: int, target: str) -> np.ndarray:
    """Grad-CAM worked out by hand for logits L = W·A + b (then bilinear upsampling U).

    dS/dA_k(q) = W_ck · (Uᵀ m)(q), and each row of U sums to 1, so the channel weight is
    w_k = W_ck · |M| / Q (Q = pixels of A, M = the scored pixels at input resolution).
    """
    with torch.no_grad():
        a = net.features(x)[0].numpy()  # (K, h, w)
        logits = upsample_logits(net(x), tuple(x.shape[-2:]))[0].numpy()
    w_head = net.head.weight[:, :, 0, 0].detach().numpy()  # (2, K)
    # the prediction stage's mask: P(class 1) rounded to uint8, >= 128
    p1 = 1 / (1 + np.exp(logits[0] - logits[1]))
    foreground = np.round(255 * p1.astype(np.float32)) >= 128
    region = (foreground if c == 1 else ~foreground) if target == "predicted" else True
    region = np.broadcast_to(region, logits.shape[1:])
    weights = w_head[c] * region.sum() / a[0].size
    cam = np.maximum(np.tensordot(weights, a, axes=1), 0).astype(np.float32)
    cam = cv2.resize(cam, (x.shape[-1], x.shape[-2]), interpolation=cv2.INTER_LINEAR)
    span = cam.max() - cam.min()
    return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("target", ["predicted", "all"])
@pytest.mark.parametrize("c", [0, 1])
def test_grad_cam_matches_hand_derivation_on_a_linear_net(stride, target, c):
    net = linear_net(stride)
    x = torch.randn(1, 3, 8, 12, generator=torch.Generator().manual_seed(5))
    maps, _ = grad_cam(net, x, (c,), layer="features", target=target)
    expected = hand_cam(net, x, c, target)
    assert maps.shape == (1, 1, 8, 12)
    assert expected.max() == pytest.approx(1.0)  # the case is not degenerate
    np.testing.assert_allclose(maps[0, 0].numpy(), expected, atol=1e-5)


def test_a_class_the_model_never_predicts_gives_an_empty_map():
    net = linear_net(head_bias=(50.0, -50.0))  # class 0 everywhere
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    maps, masks = grad_cam(net, x, (1,), layer="features", target="predicted")
    assert not masks.any()
    assert torch.count_nonzero(maps) == 0
    everywhere, _ = grad_cam(net, x, (1,), layer="features", target="all")
    assert torch.count_nonzero(everywhere) > 0  # scoring every pixel still sees the class


class Upsampled(nn.Module):
    """Logits at the input resolution, as pytorch-grad-cam's segmentation target needs."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return upsample_logits(self.net(x), tuple(x.shape[-2:]))


@pytest.mark.parametrize("target", ["predicted", "all"])
@pytest.mark.parametrize("variant", ["full", "default"])
def test_grad_cam_agrees_with_pytorch_grad_cam(variant, target):
    torch.manual_seed(11)
    net = VGGUNet(ModelSpec(variant, width=0.125)).eval()
    reference_net = copy.deepcopy(net)
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    ours, predicted = grad_cam(net, x, target=target)  # default layer: the last decoder block
    assert ours.shape == (2, 2, 64, 96)
    predicted = predicted.numpy()
    assert predicted.any(axis=(1, 2)).all() and (~predicted).any(axis=(1, 2)).all()
    wrapped = Upsampled(reference_net).eval()
    for c in (0, 1):
        regions = predicted if c == 1 else ~predicted
        if target == "all":
            regions = np.ones_like(regions)
        with GradCAM(model=wrapped, target_layers=[wrapped.net.decoder[-1]]) as reference:
            targets = [SemanticSegmentationTarget(c, r.astype(np.float32)) for r in regions]
            theirs = reference(input_tensor=x, targets=targets)
        np.testing.assert_allclose(ours[:, c].numpy(), theirs, atol=1e-4)
    assert not np.allclose(ours[:, 0], ours[:, 1], atol=1e-2)  # the classes differ


def test_frozen_weights_and_layers_outside_the_forward_pass_are_refused():
    net = VGGUNet(ModelSpec("default", width=0.125)).eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"'decoder' ran 0 times"):
        grad_cam(net, x, layer="decoder")  # the ModuleList itself is never called
    net.requires_grad_(False)
    with pytest.raises(ValueError, match="no gradient reaches"):
        grad_cam(net, x)


def test_layer_names_resolve_and_bad_ones_list_the_choices():
    net = VGGUNet(ModelSpec("default", width=0.125))
    assert resolve_layer(net, None)[0] == "decoder.3"
    assert resolve_layer(VGGUNet(ModelSpec("full", width=0.125)), None)[0] == "decoder.4"
    assert resolve_layer(net, "encoder.21")[1] is net.encoder[21]
    with pytest.raises(ValueError, match=r"no layer 'decoder\.9'.*decoder\.3"):
        resolve_layer(net, "decoder.9")


def test_an_encoder_layer_followed_by_an_inplace_relu_works():
    torch.manual_seed(0)
    net = VGGUNet(ModelSpec("default", width=0.125)).eval()
    x = torch.randn(1, 3, 32, 32)
    maps, _ = grad_cam(net, x, (0,), layer="encoder.19")  # a conv; an in-place ReLU follows
    assert maps.shape == (1, 1, 32, 32)
    assert 0.0 <= float(maps.min()) and float(maps.max()) == pytest.approx(1.0)


def test_replicate_average_and_intersection_follow_eq_2_and_3():
    maps = [np.array([[0.0, 1.0]]), np.array([[0.5, 0.0]]), np.array([[1.0, 0.5]])]
    np.testing.assert_allclose(replicate_average(maps), [[0.5, 0.5]])
    masks = [np.array([[1, 1, 0]]), np.array([[1, 0, 0]]), np.array([[1, 1, 1]])]
    assert replicate_intersection(masks).tolist() == [[True, False, False]]


def _checkpoint(path, seed: int) -> None:
    torch.manual_seed(seed)
    spec = {"variant": "default", "width": 0.125, "n_classes": 2, "bn_momentum": 0.1}
    model = VGGUNet(ModelSpec(**spec))
    torch.save({"state_dict": model.state_dict(), "meta": {"spec": {"model": spec}}}, path)


def test_explain_images_averages_replicates_and_intersects_their_masks(
    tiny_split, tiny_store, tmp_path
):
    chosen = read_split(tiny_split, "test")["slice_id"].tolist()[:3]
    pd.DataFrame({"slice_id": chosen}).to_csv(tmp_path / "images.csv", index=False)
    checkpoints = [tmp_path / f"rep{k}.pt" for k in (1, 2)]
    for k, path in enumerate(checkpoints):
        _checkpoint(path, seed=k)
    out = tmp_path / "cam.npz"
    explain_images(checkpoints, tiny_split, tiny_store, tmp_path / "images.csv", out, batch_size=2)
    cams = read_cams(out)
    assert cams["slice_ids"].tolist() == chosen
    assert cams["cam"].shape == (3, 2, 64, 64) and cams["mask"].shape == (3, 64, 64)
    assert cams["cam"].min() >= 0 and cams["cam"].max() <= 1
    assert str(cams["layer"]) == "decoder.3" and int(cams["replicates"]) == 2

    # eq. 2 against the prediction path (P(class 1) >= 0.5 in every replicate), eq. 3 against
    # the per-model maps
    rows = read_split(tiny_split, "test").set_index("slice_id", drop=False).loc[chosen]
    images = SliceStore(tiny_store).images(manifest_rows(rows))
    per_model, per_map = [], []
    for path in checkpoints:
        model, _ = load_checkpoint(path)
        per_model.append(probabilities(model, images, 4, torch.device("cpu")) >= 128)
        per_map.append(model_cams(model, images, None, "predicted", 3, torch.device("cpu"))[0])
    assert (cams["mask"] == np.logical_and(*per_model)).all()
    np.testing.assert_allclose(cams["cam"], (per_map[0] + per_map[1]) / 2, atol=1e-6)


def test_explain_images_names_the_file_when_a_chosen_image_is_not_a_test_image(
    tiny_split, tiny_store, tmp_path
):
    pd.DataFrame({"slice_id": ["no-such-slice"]}).to_csv(tmp_path / "images.csv", index=False)
    _checkpoint(tmp_path / "rep1.pt", 0)
    with pytest.raises(InputDataError, match=r"images\.csv.*no-such-slice.*not on the test side"):
        explain_images(
            [tmp_path / "rep1.pt"],
            tiny_split,
            tiny_store,
            tmp_path / "images.csv",
            tmp_path / "o.npz",
        )
    assert not (tmp_path / "o.npz").exists()


def test_read_cams_names_the_file_when_it_is_not_a_grad_cam_file(tmp_path):
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(InputDataError, match=r"text\.npz.*not a readable"):
        read_cams(tmp_path / "text.npz")
    np.savez(tmp_path / "partial.npz", slice_ids=np.array(["a"]), cam=np.zeros((1, 2, 4, 4)))
    with pytest.raises(InputDataError, match=r"partial\.npz.*lacks \['layer', 'mask'"):
        read_cams(tmp_path / "partial.npz")
    np.savez(
        tmp_path / "shape.npz",
        slice_ids=np.array(["a", "b"]),
        cam=np.zeros((2, 2, 4, 4)),
        mask=np.zeros((2, 4, 5), bool),
        replicates=np.int64(2),
        layer=np.array("decoder.3"),
    )
    with pytest.raises(InputDataError, match=r"shape\.npz.*mask \(2, 4, 5\)"):
        read_cams(tmp_path / "shape.npz")


def test_explain_images_runs_each_model_in_its_training_arithmetic(
    tiny_split, tiny_store, tmp_path, monkeypatch
):
    """Grad-CAM's forward pass uses the checkpoint's precision, as prediction does, so its
    replicate masks are the prediction files' masks also for bf16-trained models."""
    chosen = read_split(tiny_split, "test")["slice_id"].tolist()[:3]
    pd.DataFrame({"slice_id": chosen}).to_csv(tmp_path / "images.csv", index=False)
    checkpoints = [tmp_path / f"rep{k}.pt" for k in (1, 2)]
    for k, (path, precision) in enumerate(zip(checkpoints, ("bf16", "fp32"), strict=True)):
        _checkpoint(path, seed=k)
        state = torch.load(path, weights_only=True)
        state["meta"]["precision"] = precision
        torch.save(state, path)
    asked, entered = [], []

    class Recorded(contextlib.nullcontext):
        def __init__(self, precision):
            super().__init__()
            self.precision = precision

        def __enter__(self):
            entered.append(self.precision)

    def spy(meta, device):
        asked.append((meta.get("precision"), device.type))
        return Recorded(meta.get("precision"))

    monkeypatch.setattr("synergyseg.cam.autocast_for", spy)
    out = tmp_path / "cam.npz"
    explain_images(checkpoints, tiny_split, tiny_store, tmp_path / "images.csv", out, batch_size=2)
    assert asked == [("bf16", "cpu"), ("fp32", "cpu")]
    assert entered == ["bf16", "bf16", "fp32", "fp32"]  # each batch: 3 images, 2 a batch
