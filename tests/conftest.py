"""Shared fixtures: a seeded RNG and small phantom datasets written once per session."""

from __future__ import annotations

import numpy as np
import pytest

from synergyseg.data import phantoms


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory):
    """One small phantom per raw format, shared by the read-back and slicing tests."""
    root = tmp_path_factory.mktemp("phantoms")
    phantoms.write_phantom("isic", {"n": 25, "min_side": 48, "max_side": 80}, 7, root / "skin")
    phantoms.write_phantom("gleason2019", {"n": 12, "side": 96}, 8, root / "prostate")
    phantoms.write_phantom("kits19", {"n": 4, "side": 48, "n_slices": 16}, 9, root / "kidney")
    return root
