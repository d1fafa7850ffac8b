"""Atomic file output: a killed job never leaves a file that looks finished.

Every writer here writes to a temporary sibling and renames it into place (``os.replace`` is
atomic on POSIX filesystems). This is infrastructure: it decides *how* a file reaches the disk,
never what it holds, so rules do not list it among the code that can change their results.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(
    path: str | Path, suffix: str | None = None, durable: bool = False
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the target's own suffix so that writers which infer the format from
    the extension (OpenCV, SimpleITK) keep working. ``durable`` flushes the file to disk
    before the rename and the rename after it, so that after a power cut or a node crash the
    file is either absent or complete: for the few files hours of GPU time depend on (resume
    states, checkpoints). Without it, a crash can leave a renamed file whose data never
    reached the disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would have
        os.chmod(tmp_path, 0o666 & ~_umask())
        if durable:
            _fsync(tmp_path, os.O_RDONLY)
        os.replace(tmp_path, path)
        if durable:
            _fsync_directory(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete what a writer killed outright (SIGKILL, a node lost) left of ``path``: the
    temporary siblings :func:`atomic_path` and :func:`atomic_directory` name
    ``.<name>.<random>`` (an extracted ISIC part is a folder of gigabytes). Only for outputs
    that nothing else writes at the same time, i.e. a job's own, at its start. Returns them."""
    path = Path(path)
    # mkstemp and mkdtemp name them ".<name>." + 8 random characters (+ a file's suffix): a
    # wider pattern would take the temporaries of an output "<name>.<x>", or a user's backup
    made = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}(\.[^.]+)?")
    candidates = path.parent.glob(f".{glob.escape(path.name)}.*")
    stale = sorted(p for p in candidates if made.fullmatch(p.name))
    for leftover in stale:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        log.info("removed %s, left by a job killed while writing", leftover)
    return stale


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable, where the file system can: some network and FUSE
    file systems refuse to sync a directory (and persist renames their own way)."""
    try:
        _fsync(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds.

    What an earlier writer killed outright left of ``path`` is removed first (a directory
    output is a job's own). An existing ``path`` is renamed aside before the new one is
    renamed in, and deleted after: a kill in between leaves no ``path`` at all, never a
    half-deleted one that looks finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            os.replace(path, old)  # onto the empty folder just made: an atomic swap aside
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV atomically (pandas' own number formatting, ``\n`` line ends): byte-identical
    on a rerun with the same values."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
