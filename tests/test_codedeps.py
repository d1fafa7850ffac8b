"""Which package modules each rule's script runs (the code it must be re-run for)."""

from __future__ import annotations

from pathlib import Path

from synergyseg.codedeps import INFRASTRUCTURE, package_closure

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "synergyseg"
SCRIPTS = ROOT / "workflow" / "scripts"


def names(paths):
    return {p.relative_to(PACKAGE).as_posix() for p in paths}


def test_closure_follows_imports_through_the_package_and_skips_infrastructure(tmp_path):
    package = tmp_path / "synergyseg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from synergyseg.b import thing\nimport numpy\n")
    (package / "b.py").write_text("import synergyseg.atomic\nfrom synergyseg.sub import c\n")
    (package / "sub" / "c.py").write_text("def f():\n    from synergyseg import d\n")
    (package / "d.py").write_text("")
    (package / "atomic.py").write_text("from synergyseg import e\n")
    (package / "e.py").write_text("")  # reached only through infrastructure: still followed
    (package / "unused.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("from synergyseg.a import x\n")
    closure = {p.relative_to(package).as_posix() for p in package_closure(script, package)}
    assert closure == {"a.py", "b.py", "sub/c.py", "d.py", "e.py"}


def test_training_runs_no_evaluation_statistics_or_figure_code():
    closure = names(package_closure(SCRIPTS / "train_models.py", PACKAGE))
    assert {"model.py", "train.py", "lanes.py", "training_data.py", "store.py"} <= closure
    assert {"preprocess.py", "manifests.py", "seeds.py", "weights.py"} <= closure
    assert not closure & {"metrics.py", "stats.py", "tables.py", "scoring.py", "splits.py"}
    assert not any(name.startswith(("figures/", "data/")) for name in closure)


def test_no_rule_depends_on_infrastructure_modules():
    for script in SCRIPTS.glob("*.py"):
        closure = names(package_closure(script, PACKAGE))
        assert not closure & INFRASTRUCTURE, script.name
