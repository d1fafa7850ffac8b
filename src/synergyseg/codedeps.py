"""Which package modules a rule really runs: the import closure of its script within the package.

Snakemake's code trigger sees only a rule's ``script:`` file, not the modules it imports, so the
workflow lists those modules as the rule's inputs. Listing them by hand goes stale; here they
are found by reading the ``import`` statements (no code is run), following them through the
package. Modules in :data:`INFRASTRUCTURE` decide how a job runs (atomic writes, logging,
device claims, config checks, checksums, error types, what it asks a cluster for), never what
its outputs hold, so an edit
to them re-runs nothing: a fix to the atomic-write helper must not retrain 270 models.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "synergyseg"
INFRASTRUCTURE = frozenset(
    {
        "__init__.py",
        "atomic.py",
        "checksums.py",
        "codedeps.py",
        "config.py",
        "errors.py",
        "gpu.py",
        "resources.py",
        "workflow.py",
    }
)


def _module_file(root: Path, dotted: str) -> Path | None:
    """``synergyseg.a.b`` → ``root/a/b.py`` or ``root/a/b/__init__.py`` (None if neither)."""
    parts = dotted.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return root / "__init__.py" if not parts else None


@cache
def _direct_imports(path: Path, root: Path) -> frozenset[Path]:
    """Package files imported by ``path`` (``import x`` and ``from x import y`` alike)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[Path] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from synergyseg.data import ct` imports the package and the submodule ct
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                module = _module_file(root, name)
                if module is not None:
                    found.add(module)
    return frozenset(found)


def package_closure(script: str | Path, root: str | Path) -> list[Path]:
    """Every package file ``script`` imports directly or through other package files, minus
    :data:`INFRASTRUCTURE` (and package ``__init__`` files), sorted."""
    root = Path(root).resolve()
    seen: set[Path] = set()
    todo = list(_direct_imports(Path(script).resolve(), root))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_direct_imports(module, root))
    return sorted(
        m
        for m in seen
        if m.name != "__init__.py" and m.relative_to(root).as_posix() not in INFRASTRUCTURE
    )
