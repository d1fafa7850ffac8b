"""Downloads of the public sources: resumable, checksum-verified, atomic, and offline-friendly.

Compute nodes of many clusters have no network, so downloads happen in local rules and every
file is checked before use. A file that is already in place with the right checksum is not
fetched again, which also lets a user drop in files obtained elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd

from synergyseg.data.sources import ISIC_ID
from synergyseg.errors import InputDataError
from synergyseg.io import atomic_path, write_csv

log = logging.getLogger(__name__)
CHUNK = 1 << 20

KITS19_IMAGING_URL = "https://kits19.sfo2.digitaloceanspaces.com/master_{case:05d}.nii.gz"
KITS19_SEGMENTATION_URL = (
    "https://github.com/neheller/kits19/raw/master/data/case_{case:05d}/segmentation.nii.gz"
)
ISIC_2018_TASK1_URL = "https://isic-challenge-data.s3.amazonaws.com/2018/{name}.zip"
ISIC_2018_TASK1_PARTS = (
    "ISIC2018_Task1-2_Training_Input",
    "ISIC2018_Task1_Training_GroundTruth",
    "ISIC2018_Task1-2_Validation_Input",
    "ISIC2018_Task1_Validation_GroundTruth",
    "ISIC2018_Task1-2_Test_Input",
    "ISIC2018_Task1_Test_GroundTruth",
)
ISIC_API_IMAGE_URL = "https://api.isic-archive.com/api/v2/images/{isic_id}/"


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | Path, sha256: str | None) -> None:
    """Raise unless ``path``'s SHA-256 starts with ``sha256`` (a full hash or a prefix)."""
    if not sha256:
        return
    actual = sha256_of(path)
    if not actual.startswith(sha256.lower()):
        raise InputDataError(
            path, f"SHA-256 {actual[:16]}… does not match the expected {sha256[:16]}…"
        )


def fetch(
    url: str, dest: str | Path, sha256: str | None = None, retries: int = 3, timeout: float = 60
) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it; skip when a verified copy exists.

    Without a network the error says which file to place where, so an offline user can copy it
    in by hand and rerun.
    """
    dest = Path(dest)
    if dest.is_file():
        verify(dest, sha256)
        log.info("%s already present, not downloading", dest)
        return dest
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(dest) as tmp:
                with (
                    urllib.request.urlopen(url, timeout=timeout) as response,
                    open(tmp, "wb") as out,
                ):
                    shutil.copyfileobj(response, out, CHUNK)
                verify(tmp, sha256)
            log.info("downloaded %s → %s", url, dest)
            return dest
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last_error = err
            log.warning("download of %s failed (attempt %d/%d): %s", url, attempt, retries, err)
            if attempt < retries:
                time.sleep(min(2**attempt, 30))
    raise InputDataError(
        dest,
        f"could not download {url} ({last_error}); without network, place the file there by hand",
    )


def extract_zip(archive: str | Path, dest: str | Path) -> None:
    """Extract a zip, refusing members that would land outside ``dest`` (zip-slip)."""
    archive, dest = Path(archive), Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for member in zf.namelist():
                target = (dest / member).resolve()
                if root not in target.parents and target != root:
                    raise InputDataError(archive, f"member {member!r} would extract outside {dest}")
            zf.extractall(dest)
    except zipfile.BadZipFile as err:
        raise InputDataError(archive, f"not a valid zip archive ({err})") from err


def isic_label(isic_id: str, api_url: str = ISIC_API_IMAGE_URL, timeout: float = 30) -> str | None:
    """benign/malignant/… for one image from the ISIC archive API v2; None when unreachable."""
    try:
        with urllib.request.urlopen(api_url.format(isic_id=isic_id), timeout=timeout) as response:
            record = json.load(response)
    except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
        log.warning("no ISIC metadata for %s (%s)", isic_id, err)
        return None
    clinical = record.get("metadata", {}).get("clinical", {})
    return clinical.get("benign_malignant") or "unknown"


def write_isic_labels(
    isic_dir: str | Path, out_csv: str | Path, fetch: bool = True, api_url: str = ISIC_API_IMAGE_URL
) -> None:
    """Write ``isic_id,benign_malignant`` for every image below ``isic_dir``.

    With ``fetch`` false (or no network) every label is ``unknown``; the segmentation half of
    the study still runs, only the label-stratified tables lose their meaning.
    """
    ids = sorted(p.stem for p in Path(isic_dir).rglob("ISIC_*.jpg") if ISIC_ID.match(p.stem))
    labels, failures = [], 0
    for isic_id in ids:
        label = isic_label(isic_id, api_url) if fetch and failures < 3 else None
        failures = 0 if label is not None else failures + 1
        if fetch and failures == 3:
            log.warning(
                "ISIC archive unreachable three times in a row; remaining labels are unknown"
            )
        labels.append(label or "unknown")
    write_csv(pd.DataFrame({"isic_id": ids, "benign_malignant": labels}), out_csv)
