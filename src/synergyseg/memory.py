"""Peak memory of a block of code, as the kernel counts it (Linux ``/proc``), and handing
freed memory back to it between blocks.

``RssAnon`` is what a job must be given: its private memory (numpy and torch buffers, Python
objects). Pages of the memory-mapped slice store are file-backed (``RssFile``): shared with
every job on the node and reclaimable page cache, so they are reported but not counted as need.
A sampling thread reads ``/proc/self/status`` every few milliseconds; allocations shorter than
that can be missed, which is why benchmarks measure blocks of work, not single operations.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def read_status() -> dict[str, int]:
    """RssAnon, RssFile, VmRSS and VmHWM of this process, in bytes.

    Some sandboxed kernels (gVisor) report only VmRSS: RssAnon is then taken as VmRSS (an
    upper bound, file-backed pages included) and RssFile as 0, so measurements still run.
    """
    values = {}
    for line in STATUS.read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    values.setdefault("RssAnon", values.get("VmRSS", 0))
    values.setdefault("RssFile", 0)
    return values


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.anon`` (bytes above the level at entry,
    at the highest point) and ``peak.anon_total`` (the absolute highest RssAnon)."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.start = self.anon_total = self.file_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            status = read_status()
            self.anon_total = max(self.anon_total, status["RssAnon"])
            self.file_total = max(self.file_total, status["RssFile"])
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.start = read_status()["RssAnon"]
        self.anon_total = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        status = read_status()
        self.anon_total = max(self.anon_total, status["RssAnon"])

    @property
    def anon(self) -> int:
        return self.anon_total - self.start


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


def release_freed_memory() -> None:
    """Hand memory freed by finished blocks back to the kernel (glibc ``malloc_trim``).

    glibc raises its mmap threshold after large arrays are freed, so the next blocks' arrays
    come from the heap, and freed heap is kept: a long blocked loop's RSS then creeps up with
    the number of blocks although nothing stays alive. Trimming after each block keeps the
    peak at one block's worth.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
