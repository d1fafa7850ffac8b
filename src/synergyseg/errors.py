"""One exception type for bad input, so the workflow can say *which file* and *what is wrong*.

Every reader raises :class:`InputDataError` with the offending path in the message instead of
letting a library error (an OpenCV ``None``, an ITK stack trace) surface far from its cause.
"""

from __future__ import annotations

from pathlib import Path


class InputDataError(ValueError):
    """Raised when an input file or folder cannot be used; the message names it and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
