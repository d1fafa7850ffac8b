"""Shared fixtures: a seeded RNG, small phantom datasets written once per session, and the demo
run once per test run."""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from workflow_runs import DEMO_ARGS, copy_workflow, snakemake

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


@pytest.fixture(scope="session")
def tiny_split(phantom_root, tmp_path_factory):
    """A split manifest over 25 ISIC-phantom slices of 64x64; the slice store (and PNG copies)
    lie in the same folder (see ``tiny_store``)."""
    from synergyseg.atomic import write_csv
    from synergyseg.data import slicing
    from synergyseg.splits import SplitSettings, random_split

    out = tmp_path_factory.mktemp("tiny")
    skin = phantom_root / "skin"
    records = slicing.find_records("isic", skin, skin / "labels.csv")
    manifest = slicing.make_slices(
        "isic",
        records,
        slicing.SliceSettings(64, 64),
        store_dir=out,
        manifest=out / "manifest.csv",
        png_dir=out / "png",
    )
    split = random_split(manifest, SplitSettings(), seed=1)
    write_csv(split, out / "split1.csv")
    return out / "split1.csv"


@pytest.fixture(scope="session")
def tiny_store(tiny_split):
    """The slice store of ``tiny_split``."""
    return tiny_split.parent


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on a free loopback port for one test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo workflow as `make demo` runs it, in a fresh copy of the repository: run once
    per test run, also under pytest-xdist, where the first worker to ask runs it and the other
    waits for it (a file lock in the run's temporary folder, which the workers share). Tests
    only read it; they run Snakemake in copies (``workflow_runs.edited_copy``)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return _run_demo(tmp_path_factory.mktemp("demo"))
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, above each worker's
    # the finished demo's folder, or the error of the worker that ran it
    finished, failed = shared / "demo.finished", shared / "demo.failed"
    with FileLock(shared / "demo.lock"):
        if failed.is_file():
            pytest.fail(f"the demo run failed on another test worker:\n{failed.read_text()}")
        if not finished.is_file():
            # a folder of its own: a killed worker's Snakemake may still write into the last one
            workdir = Path(tempfile.mkdtemp(prefix="demo", dir=shared))
            try:
                _run_demo(workdir)
            except BaseException:
                failed.write_text(traceback.format_exc())
                raise
            finished.write_text(str(workdir))
    return Path(finished.read_text())


def _run_demo(workdir):
    copy_workflow(workdir)
    snakemake(workdir, *DEMO_ARGS)
    return workdir


# The longest files (minutes each, most of it waiting on Snakemake or the scheduler) go first,
# so that `make test`'s two workers (pytest -n 2 --dist loadfile --no-loadscope-reorder: files
# in this order, not by their number of tests) start one each and the short files fill in
# beside them, instead of one long file starting last. The demo's restart tests come third:
# pytest-xdist hands a worker its next file once it has at most two tests left, which is the
# SLURM worker after four of its six tests, while the other one is still busy with
# test_workflow.py on the same demo run.
LONGEST_FIRST = ("test_workflow.py", "test_slurm.py", "test_restarts.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file is kept
