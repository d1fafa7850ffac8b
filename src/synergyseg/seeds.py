"""Seeds derived from names, so every random draw is reproducible across machines and runs.

One module on its own because everything random depends on it: editing split or table code
must not look like a change to the seeds of every training job.
"""

from __future__ import annotations

import hashlib


def regime_seed(base_seed: int, *parts: str) -> int:
    """A stable 32-bit seed from the config seed and names (Python's ``hash`` is salted per run)."""
    digest = hashlib.sha256("/".join([str(base_seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little")
