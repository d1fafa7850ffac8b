"""VGG16-UNet: shapes, parameter count, Keras-style init, TII/LMI initialisation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from synergyseg import model as model_module
from synergyseg.lanes import pixel_loss
from synergyseg.model import (
    ModelSpec,
    VGGUNet,
    build_model,
    nearest_by_broadcast,
    upsample_logits,
    vgg_layers,
)


@pytest.fixture(scope="module")
def imagenet_like_state():
    """A torchvision VGG16 state dict; random values (biases too) stand in for ImageNet offline."""
    torch.manual_seed(0)
    return {
        k: torch.randn_like(v)
        for k, v in torchvision.models.vgg16(weights=None).state_dict().items()
    }


@pytest.mark.parametrize("height, width", [(416, 608), (512, 512)])
def test_default_variant_gives_half_resolution_logits(height, width):
    model = VGGUNet(ModelSpec("default", 0.25)).eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, height, width))
    assert logits.shape == (1, 2, height // 2, width // 2)
    assert upsample_logits(logits, (height, width)).shape == (1, 2, height, width)


@pytest.mark.parametrize("height, width", [(416, 608), (512, 512)])
def test_full_variant_gives_full_resolution_logits(height, width):
    model = VGGUNet(ModelSpec("full", 0.25)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, height, width)).shape == (1, 2, height, width)


def test_default_variant_has_12_3_million_parameters():
    n = sum(p.numel() for p in VGGUNet(ModelSpec("default", 1.0)).parameters())
    # VGG16 blocks 1-4 (7,635,264) + decoder 512/256/128/64 with BN + 3x3 head
    assert n == 12_321_026


def test_encoder_is_torchvision_vgg16_features_up_to_block_4():
    ours = VGGUNet(ModelSpec("default", 1.0)).encoder
    theirs = torchvision.models.vgg16(weights=None).features[:24]
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


def test_vgg_layers_are_torchvisions_with_and_without_batchnorm():
    """The layers are built locally (no torchvision import in jobs); torchvision's own
    ``vgg16`` and ``vgg16_bn`` features are the reference, module by module."""
    for ours, theirs in (
        (vgg_layers(1.0), torchvision.models.vgg16(weights=None).features),
        (vgg_layers(1.0, batch_norm=True), torchvision.models.vgg16_bn(weights=None).features),
    ):
        assert [repr(m) for m in ours] == [repr(m) for m in theirs]
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in theirs.state_dict().items()
        }


def test_new_layers_use_glorot_uniform_zero_bias_and_keras_batchnorm():
    torch.manual_seed(1)
    model = VGGUNet(ModelSpec("default", 0.5))
    conv = model.decoder[1][0]
    fan_in = conv.in_channels * 9
    fan_out = conv.out_channels * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound  # uniform over the whole range
    assert torch.count_nonzero(conv.bias) == 0
    bn = model.decoder[1][2]
    assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-3 and bn.momentum == 0.01  # Keras 0.99


def test_tii_encoder_equals_the_given_weights_and_lmi_does_not(imagenet_like_state):
    torch.manual_seed(2)
    tii = build_model(ModelSpec("default", 1.0), "tii", imagenet_like_state, "vgg16.pth")
    lmi = build_model(ModelSpec("default", 1.0), "lmi")
    for key, tensor in tii.encoder.state_dict().items():
        assert torch.equal(tensor, imagenet_like_state[f"features.{key}"]), key
    for key, tensor in lmi.encoder.state_dict().items():
        assert not torch.equal(tensor, imagenet_like_state[f"features.{key}"]), key
    # new layers get Glorot weights and zero biases in both
    assert torch.count_nonzero(tii.decoder[0][0].bias) == 0


def test_full_variant_loads_all_five_blocks(imagenet_like_state):
    model = build_model(ModelSpec("full", 1.0), "tii", imagenet_like_state, "vgg16.pth")
    assert torch.equal(model.encoder[28].weight, imagenet_like_state["features.28.weight"])


def test_missing_or_unexpected_keys_fail_loudly(imagenet_like_state):
    broken = dict(imagenet_like_state)
    del broken["features.10.weight"]
    with pytest.raises(ValueError, match=r"vgg16.pth: not a VGG16 encoder.*features.10.weight"):
        build_model(ModelSpec(), "tii", broken, "vgg16.pth")
    extra = dict(imagenet_like_state, **{"head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected \['head.weight'\]"):
        build_model(ModelSpec(), "tii", extra, "vgg16.pth")


def test_imagenet_weights_do_not_fit_a_narrow_model(imagenet_like_state):
    with pytest.raises(ValueError, match="width 1.0 only"):
        build_model(ModelSpec("default", 0.5), "tii", imagenet_like_state, "vgg16.pth")


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="variant"):
        ModelSpec("resnet")
    with pytest.raises(ValueError, match="init must be"):
        build_model(ModelSpec("default", 0.25), "imagenet")


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upsampling_by_broadcast_is_nearest_upsampling(layout, dtype):
    """The GPU's decoder upsampling copies the values nearest x2 upsampling gives, in the
    input's dtype and layout; its backward pass sums each 2x2 block of the gradient."""
    torch.manual_seed(0)
    x = torch.rand(2, 5, 3, 4).to(dtype).to(memory_format=layout).requires_grad_()
    up = nearest_by_broadcast(x)
    assert up.dtype == dtype and up.is_contiguous(memory_format=layout)
    assert torch.equal(up, F.interpolate(x, scale_factor=2, mode="nearest"))
    weights = torch.rand(2, 5, 6, 8)
    (grad,) = torch.autograd.grad((up.float() * weights).sum(), x)
    blocks = [weights[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    by_hand = torch.stack(blocks).sum(0)  # the gradient of each pixel's 2x2 block
    torch.testing.assert_close(grad, by_hand.to(dtype))  # tolerance of the dtype


def test_a_one_pixel_map_is_upsampled_to_a_tensor_of_its_own():
    """At 1x1 a broadcast reshape would be a view of the input with zero strides."""
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.rand(2, 3, 1, 1).to(memory_format=layout)
        up = nearest_by_broadcast(x)
        up += 1  # an in-place write fails on a view of repeated elements
        assert torch.equal(up, x.expand(2, 3, 2, 2) + 1) and up.data_ptr() != x.data_ptr()


def test_the_decoder_upsamples_by_broadcast_on_cuda_only(monkeypatch):
    """Which way ``upsample_nearest2x`` goes is decided by the tensor's device (a stand-in
    with a CUDA device here: this machine may have none)."""
    taken = []
    monkeypatch.setattr(model_module, "nearest_by_broadcast", lambda t: taken.append(t) or t)
    on_gpu = SimpleNamespace(device=torch.device("cuda", 0))
    assert model_module.upsample_nearest2x(on_gpu) is on_gpu and taken == [on_gpu]
    x = torch.rand(1, 2, 3, 4)
    assert torch.equal(model_module.upsample_nearest2x(x), F.interpolate(x, scale_factor=2))
    assert taken == [on_gpu]


@pytest.mark.parametrize("variant", ["default", "full"])
def test_the_network_on_either_upsampling_computes_the_same(variant, monkeypatch):
    """The CPU keeps F.interpolate (so CPU training is what it was); the network with the
    GPU's upsampling gives the same logits and, to float tolerance, the same gradients."""
    torch.manual_seed(0)
    network = VGGUNet(ModelSpec(variant, 0.125)).to(memory_format=torch.channels_last)
    images = torch.rand(2, 3, 64, 96).to(memory_format=torch.channels_last)
    masks = (torch.rand(2, 64, 96) > 0.5).long()
    calls = []
    interpolate = F.interpolate

    def spy(tensor, *args, **kwargs):
        calls.append(kwargs.get("mode"))
        return interpolate(tensor, *args, **kwargs)

    def run():
        network.zero_grad()
        logits = network(images)
        pixel_loss(network, images, masks).backward()
        return logits, [p.grad.clone() for p in network.parameters()]

    monkeypatch.setattr(F, "interpolate", spy)
    logits, grads = run()
    assert calls.count("nearest") == 2 * (3 if variant == "default" else 5)  # two passes
    monkeypatch.setattr(model_module, "upsample_nearest2x", nearest_by_broadcast)
    calls.clear()
    broadcast_logits, broadcast_grads = run()
    assert "nearest" not in calls
    assert torch.equal(broadcast_logits, logits)
    for a, b in zip(broadcast_grads, grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
