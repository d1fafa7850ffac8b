"""Downloads of the public sources: resumable, checksum-verified, atomic, and offline-friendly.

Compute nodes of many clusters have no network, so downloads happen in local rules and every
file is checked before use. A file that is already in place with the right checksum is not
fetched again, which also lets a user drop in files obtained elsewhere.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import torch
from torchvision.models import VGG16_Weights

from synergyseg.atomic import atomic_path, write_csv, write_text
from synergyseg.checksums import CHUNK, verify
from synergyseg.data.sources import ISIC_ID
from synergyseg.errors import InputDataError

log = logging.getLogger(__name__)

# where the kits19 starter code fetches imaging since May 2026 (it replaced a DigitalOcean bucket)
KITS19_IMAGING_URL = (
    "https://huggingface.co/datasets/neheller/KiTS-Challenge-Imaging/resolve/main/images/"
    "case_{case:05d}.nii.gz"
)
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
IMAGENET_URL = VGG16_Weights.IMAGENET1K_V1.url
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")
ISIC_API_SEARCH_URL = "https://api.isic-archive.com/api/v2/images/search/"


class IncompleteDownload(ConnectionError):
    """The server closed the connection before sending the whole file."""


#: failures worth another try: the network, the server, a connection cut short
RETRYABLE = (
    urllib.error.URLError,
    TimeoutError,
    ConnectionError,
    ssl.SSLError,
    http.client.HTTPException,
)


def fetch(
    url: str, dest: str | Path, sha256: str | None = None, retries: int = 3, timeout: float = 60
) -> Path:
    """Download ``url`` to ``dest`` and verify it; skip when a verified copy exists.

    The bytes go to a hidden ``.<name>.part`` beside ``dest``, which is renamed into place only
    once it is complete (as long as the server said the file is) and matches ``sha256``. A
    download cut short (a dropped connection, a killed job) resumes from the end of the part
    file with an HTTP range request, in this call's next try or in the next run: the ~10 GB
    ISIC training zip never restarts from zero. A resumed request carries the file's validator
    from the first response (``If-Range``: its ETag, else its Last-Modified date), so a file
    that changed on the server in between is sent whole again instead of being spliced onto
    the old bytes. Without a network the error says which file to place where, so an offline
    user can copy it in by hand and rerun.
    """
    dest = Path(dest)
    if dest.is_file():
        if sha256:
            verify(dest, sha256)
        log.info("%s already present, not downloading", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.part")
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            _download(url, partial, timeout)
        except RETRYABLE as err:
            last_error = err
            log.warning("download of %s failed (attempt %d/%d): %s", url, attempt, retries, err)
            if attempt < retries:
                time.sleep(min(2**attempt, 30))
            continue
        try:
            actual = verify(partial, sha256)
        except InputDataError as err:
            _discard(partial)  # a wrong file is not resumed
            raise InputDataError(dest, f"downloaded from {url}: {err.problem}") from err
        os.replace(partial, dest)
        _discard(partial)  # the version kept beside it
        # the hash in the log is what a user copies into the config's sha256: to pin the data
        log.info("downloaded %s → %s (SHA-256 %s)", url, dest, actual)
        return dest
    raise InputDataError(
        dest,
        f"could not download {url} ({last_error}); without network, place the file there by hand"
        + (
            f" (the {partial.stat().st_size} bytes received so far are kept in {partial.name}"
            " and the next run resumes from there)"
            if partial.is_file()
            else ""
        ),
    )


def _download(url: str, partial: Path, timeout: float) -> None:
    """Fetch ``url`` into ``partial``, continuing after the bytes it already holds where the
    server honours range requests (206), else from the start; raise IncompleteDownload when
    the connection ends before the size the server announced."""
    offset = partial.stat().st_size if partial.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    validator = _validator_path(partial)
    expected = validator.read_text(encoding="utf-8") if validator.is_file() else None
    if offset and expected:  # the server sends it whole if it changed since
        headers["If-Range"] = expected
    elif offset:
        log.warning(
            "%s: no ETag or date kept for the %d bytes already here (a host that gives neither, "
            "or a part from an earlier release): resuming without checking the file did not "
            "change",
            url,
            offset,
        )
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing after `offset`
            if _content_range_total(err.headers.get("Content-Range")) == offset:
                return None  # the part is whole (a job killed before it was published)
            _discard(partial)  # a stale or oversized part
            return _download(url, partial, timeout)
        raise
    with response:
        version = _version(response.headers)
        if offset and response.status == 206 and expected and version not in (None, expected):
            # a host that ignores If-Range but honours Range: the rest of another version
            log.info("%s changed on the server since the first bytes: downloading it again", url)
            _discard(partial)
            return _download(url, partial, timeout)
        if offset and response.status == 206:
            total = _content_range_total(response.headers.get("Content-Range"))
            mode = "ab"
            log.info("resuming %s after %d bytes", url, offset)
        else:
            if offset:
                log.info("%s: the server sent the whole file again (changed, or no ranges)", url)
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            mode = "wb"
            _keep_validator(response.headers, validator)
        with open(partial, mode) as out:
            shutil.copyfileobj(response, out, CHUNK)
    received = partial.stat().st_size
    if total is not None and received != total:
        raise IncompleteDownload(f"connection closed after {received} of {total} bytes")


def _discard(partial: Path) -> None:
    """Delete a part file and the version kept beside it: the next request starts over."""
    partial.unlink(missing_ok=True)
    _validator_path(partial).unlink(missing_ok=True)


def _validator_path(partial: Path) -> Path:
    """Where the first response's ETag or Last-Modified is kept beside a part file."""
    return partial.with_name(partial.name + ".validator")


def _version(headers) -> str | None:
    """What identifies this version of the file for ``If-Range``: a strong ETag (a weak one,
    ``W/…``, may not be used there), else the Last-Modified date."""
    etag = headers.get("ETag")
    return etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")


def _keep_validator(headers, path: Path) -> None:
    """Keep the first response's version beside the part file, for the resumed requests."""
    if value := _version(headers):
        write_text(value, path)
    else:
        path.unlink(missing_ok=True)


def _content_range_total(header: str | None) -> int | None:
    """The full size from ``Content-Range: bytes 100-199/1000`` or ``bytes */1000`` (a 416's),
    None when the server does not say."""
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", (header or "").strip())
    return int(match.group(1)) if match else None


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


class LabelFetchError(InputDataError):
    """The ISIC archive could not be asked for the labels (after retries)."""


def _get_json(url: str, retries: int, backoff: float, timeout: float) -> dict:
    """GET a JSON document, retrying with exponential backoff (``backoff`` · 2^k seconds)."""
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return json.load(response)
        except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
            last_error = err
            log.warning(
                "ISIC archive request failed (try %d of %d): %s", attempt + 1, retries + 1, err
            )
    raise ConnectionError(f"{url}: {last_error}")


def fetch_isic_labels(
    ids: list[str],
    api_url: str = ISIC_API_SEARCH_URL,
    page_size: int = 100,
    retries: int = 4,
    backoff: float = 2.0,
    timeout: float = 60,
) -> dict[str, str]:
    """benign/malignant/… per ISIC id from the archive API v2, ``page_size`` ids per search
    (following the API's ``next`` pages), not one request per image. Ids the archive does not
    return get ``unknown``; a request that still fails after ``retries`` raises ConnectionError.

    The label is the archive's top diagnosis level, ``diagnosis_1`` (Benign, Malignant or
    Indeterminate, lower-cased); the archive removed the older ``benign_malignant`` field in
    2025, which is still read where a record has no ``diagnosis_1`` (an older mirror).
    """
    labels: dict[str, str] = {}
    for start in range(0, len(ids), page_size):
        batch = ids[start : start + page_size]
        query = " OR ".join(f"isic_id:{isic_id}" for isic_id in batch)
        url: str | None = (
            f"{api_url}?{urllib.parse.urlencode({'query': query, 'limit': page_size})}"
        )
        while url:
            page = _get_json(url, retries, backoff, timeout)
            for record in page.get("results", []):
                clinical = record.get("metadata", {}).get("clinical", {})
                label = clinical.get("diagnosis_1") or clinical.get("benign_malignant")
                labels[record["isic_id"]] = label.lower() if label else "unknown"
            url = page.get("next")
    return {isic_id: labels.get(isic_id, "unknown") for isic_id in ids}


def write_isic_labels(
    isic_dir: str | Path,
    out_csv: str | Path,
    fetch: bool = True,
    api_url: str = ISIC_API_SEARCH_URL,
    retries: int = 4,
    backoff: float = 2.0,
) -> None:
    """Write ``isic_id,benign_malignant`` for every image below ``isic_dir``.

    With ``fetch`` false every label is ``unknown`` (the user's explicit choice: the
    segmentation half of the study runs, the label-stratified tables lose their meaning). When
    the archive cannot be reached the job fails and says how to provide the labels instead:
    labels never go silently missing.
    """
    ids = sorted(p.stem for p in Path(isic_dir).rglob("ISIC_*.jpg") if ISIC_ID.match(p.stem))
    if not fetch:
        log.warning("fetch_labels is false: every ISIC label is 'unknown'")
        labels = dict.fromkeys(ids, "unknown")
    else:
        try:
            labels = fetch_isic_labels(ids, api_url, retries=retries, backoff=backoff)
        except ConnectionError as err:
            raise LabelFetchError(
                out_csv,
                f"could not fetch the benign/malignant labels from the ISIC archive ({err}). "
                "Provide them instead: a CSV with columns isic_id,benign_malignant, given as "
                "the dataset's labels_csv in the config (or placed here); or set "
                "fetch_labels: false to run with every label 'unknown'",
            ) from err
        missing = sum(label == "unknown" for label in labels.values())
        log.info("%d ISIC labels fetched, %d unknown to the archive", len(ids) - missing, missing)
        if ids and missing > len(ids) / 2:
            raise LabelFetchError(
                out_csv,
                f"the ISIC archive gave no benign/malignant label for {missing} of {len(ids)} "
                "images: its records may have changed (this reads metadata.clinical.diagnosis_1). "
                "Provide the labels instead: a CSV with columns isic_id,benign_malignant, given "
                "as the dataset's labels_csv in the config; or set fetch_labels: false to run "
                "with every label 'unknown'",
            )
    write_csv(pd.DataFrame({"isic_id": ids, "benign_malignant": list(labels.values())}), out_csv)


def hash_prefix(file_name: str) -> str:
    """torchvision's convention: ``name-<sha256 prefix>.pth``."""
    match = HASH_IN_NAME.search(file_name)
    if not match:
        raise ValueError(f"{file_name}: no '-<sha256 prefix>.' in the file name")
    return match.group(1)


def fetch_imagenet_weights(dest: str | Path, url: str = IMAGENET_URL) -> Path:
    """Put the ImageNet VGG16 weights at ``dest`` (from torch's hub cache if present, else
    downloaded) and verify the SHA-256 prefix named in the URL."""
    dest = Path(dest)
    name = url.rsplit("/", 1)[-1]
    expected = hash_prefix(name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not dest.exists() and cached.is_file():
        verify(cached, expected)
        with atomic_path(dest) as tmp:
            shutil.copyfile(cached, tmp)
        log.info("copied %s from the torch hub cache", name)
        return dest
    return fetch(url, dest, sha256=expected)
