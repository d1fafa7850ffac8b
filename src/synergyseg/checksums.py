"""SHA-256 of files: pinning downloads and keying resume files to their exact inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from synergyseg.errors import InputDataError

CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()


def verify(path: str | Path, sha256: str | None) -> str:
    """``path``'s SHA-256; raise unless it starts with ``sha256`` (a full hash or a prefix)
    when one is given."""
    actual = sha256_of(path)
    if sha256 and not actual.startswith(sha256.lower()):
        raise InputDataError(
            path, f"SHA-256 {actual[:16]}… does not match the expected {sha256[:16]}…"
        )
    return actual
