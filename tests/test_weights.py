"""Pretrained weights: ImageNet fetch (local server), safe loading, local pretraining."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch
from torch import nn

from synergyseg import weights
from synergyseg.data import download
from synergyseg.errors import InputDataError
from synergyseg.model import ModelSpec, build_model, vgg16_features
from synergyseg.pretrain import EncoderClassifier, PretrainSpec, folded_vgg_state, pretrain_encoder


def small_vgg_file(folder, width=0.125):
    """A torchvision-style VGG16 state dict saved under torchvision's '<name>-<sha prefix>.pth'."""
    torch.manual_seed(0)
    state = {
        f"features.{k}": torch.randn_like(v) for k, v in vgg16_features(width).state_dict().items()
    }
    raw = folder / "raw.pth"
    torch.save(state, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    named = folder / f"vgg16-{prefix}.pth"
    raw.rename(named)
    return named, state


def test_imagenet_weights_are_fetched_once_and_verified(server, tmp_path, monkeypatch):
    root, url = server
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    served, state = small_vgg_file(root)
    dest = tmp_path / "resources" / "weights" / "imagenet_vgg16.pth"
    download.fetch_imagenet_weights(dest, url=f"{url}/{served.name}")
    loaded = weights.load_state_dict(dest)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    model = build_model(ModelSpec("full", 0.125), "tii", loaded, str(dest))
    assert torch.equal(model.encoder[0].weight, state["features.0.weight"])


def test_tampered_imagenet_file_is_refused(server, tmp_path, monkeypatch):
    root, url = server
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    (root / "vgg16-397923af.pth").write_bytes(b"not the weights")
    dest = tmp_path / "imagenet_vgg16.pth"
    with pytest.raises(InputDataError, match="does not match the expected 397923af"):
        download.fetch_imagenet_weights(dest, url=f"{url}/vgg16-397923af.pth")
    assert not dest.exists()


def test_no_network_and_no_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    with pytest.raises(InputDataError, match="could not download .*vgg16-397923af.pth"):
        download.fetch_imagenet_weights(
            tmp_path / "w.pth", url="http://127.0.0.1:9/models/vgg16-397923af.pth"
        )


def test_torch_hub_cache_is_used_offline(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    cached, _ = small_vgg_file(hub / "checkpoints")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    dest = tmp_path / "w.pth"
    download.fetch_imagenet_weights(dest, url=f"http://127.0.0.1:9/models/{cached.name}")
    assert dest.read_bytes() == cached.read_bytes()


def test_hash_prefix_follows_torchvision_naming():
    assert download.hash_prefix("vgg16-397923af.pth") == "397923af"
    assert download.IMAGENET_URL.endswith("vgg16-397923af.pth")
    with pytest.raises(ValueError):
        download.hash_prefix("vgg16.pth")


def test_malicious_weights_file_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pth"
    bad.write_bytes(pickle.dumps({"features.0.weight": Exploit()}))
    with pytest.raises(
        InputDataError, match="evil.pth: refused: not loadable with weights_only=True"
    ):
        weights.load_state_dict(bad)


def test_batchnorm_folding_preserves_the_encoder_output():
    torch.manual_seed(3)
    model = EncoderClassifier(0.125, 4)
    for layer in model.features:  # give BN non-trivial statistics
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(layer.weight, 0.5, 1.5)
            nn.init.uniform_(layer.bias, -0.2, 0.2)
    model.eval()
    plain = vgg16_features(0.125)
    state = folded_vgg_state(model, 0.125)
    plain.load_state_dict(
        {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model.features(x), rtol=1e-4, atol=1e-5)


def test_local_pretraining_learns_and_feeds_tii(tmp_path):
    out = tmp_path / "pretrained_encoder.pth"
    result = pretrain_encoder(PretrainSpec(width=0.125, n_images=400, epochs=3), seed=1, out=out)
    assert result["held_out_accuracy"] > 0.5  # chance is 0.25
    model = build_model(ModelSpec("default", 0.125), "tii", weights.load_state_dict(out), str(out))
    assert torch.equal(model.encoder[0].weight, weights.load_state_dict(out)["features.0.weight"])
