"""Download code against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pandas as pd
import pytest

from synergyseg.data import download
from synergyseg.errors import InputDataError


def test_fetch_downloads_and_verifies(server, tmp_path):
    root, url = server
    payload = b"kits19 imaging bytes" * 1000
    (root / "master_00000.nii.gz").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = download.fetch(
        f"{url}/master_00000.nii.gz", tmp_path / "out" / "imaging.nii.gz", sha[:12]
    )
    assert dest.read_bytes() == payload
    # already present and verified: no second request needed, even with the server gone
    (root / "master_00000.nii.gz").unlink()
    assert download.fetch(f"{url}/master_00000.nii.gz", dest, sha) == dest


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    root, url = server
    (root / "part.zip").write_bytes(b"tampered")
    dest = tmp_path / "part.zip"
    with pytest.raises(InputDataError, match="part.zip.*SHA-256 .* does not match"):
        download.fetch(f"{url}/part.zip", dest, "00" * 32)
    assert not dest.exists() and not list(tmp_path.glob(".part.zip*"))


def test_offline_is_a_clear_error(tmp_path):
    dest = tmp_path / "imaging.nii.gz"
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(InputDataError, match="could not download .* place the file there by hand"):
        download.fetch("http://127.0.0.1:9/master_00000.nii.gz", dest, retries=1)
    assert not dest.exists()


def test_extract_zip_and_refuse_zip_slip(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("ISIC2018_Task1-2_Training_Input/ISIC_0000000.jpg", b"jpg")
    download.extract_zip(good, tmp_path / "out")
    assert (
        tmp_path / "out" / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000.jpg"
    ).read_bytes() == b"jpg"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
    with pytest.raises(InputDataError, match="outside"):
        download.extract_zip(evil, tmp_path / "out2")
    (tmp_path / "broken.zip").write_bytes(b"PK nope")
    with pytest.raises(InputDataError, match="broken.zip: not a valid zip"):
        download.extract_zip(tmp_path / "broken.zip", tmp_path / "out3")


def test_isic_labels_from_api_and_unknown_when_missing(server, tmp_path):
    root, url = server
    isic = tmp_path / "isic"
    isic.mkdir()
    for i in range(3):
        (isic / f"ISIC_000000{i}.jpg").write_bytes(b"")
    for i, label in ((0, "benign"), (1, "malignant")):
        folder = root / "images" / f"ISIC_000000{i}"
        folder.mkdir(parents=True)
        (folder / "index.html").write_text(
            json.dumps({"metadata": {"clinical": {"benign_malignant": label}}})
        )
    download.write_isic_labels(isic, tmp_path / "labels.csv", api_url=url + "/images/{isic_id}/")
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert labels["benign_malignant"].tolist() == ["benign", "malignant", "unknown"]


def test_isic_labels_offline_are_unknown(tmp_path):
    isic = tmp_path / "isic"
    isic.mkdir()
    for i in range(5):
        (isic / f"ISIC_000000{i}.jpg").write_bytes(b"")
    download.write_isic_labels(
        isic, tmp_path / "labels.csv", api_url="http://127.0.0.1:9/{isic_id}"
    )
    assert set(pd.read_csv(tmp_path / "labels.csv")["benign_malignant"]) == {"unknown"}
