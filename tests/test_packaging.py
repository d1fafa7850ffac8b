"""How the workflow is distributed: conda environment, licence, catalog files, use as a module."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from synergyseg.config_docs import render

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {
    "snakemake": "snakemake-minimal",
    "simpleitk": "simpleitk",
    "opencv-python-headless": "py-opencv",
    "matplotlib": "matplotlib-base",
    "torch": "pytorch",
}


def pyproject_dependencies() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = requirement.name.lower()
        out[CONDA_NAMES.get(name, name)] = str(requirement.specifier)
    return out


def conda_dependencies() -> dict[str, tuple[str, str]]:
    """name -> (version spec, build spec) of envs/synergyseg.yaml, python excluded."""
    env = yaml.safe_load((ROOT / "envs" / "synergyseg.yaml").read_text())
    out = {}
    for spec in env["dependencies"]:
        name, version, *build = spec.split()
        if name != "python":
            out[name] = (version, build[0] if build else "")
    return out


def test_conda_environment_mirrors_pyproject():
    conda = conda_dependencies()
    assert {name: version for name, (version, _) in conda.items()} == pyproject_dependencies()


def test_conda_environment_asks_for_a_cuda_build_of_pytorch():
    env = yaml.safe_load((ROOT / "envs" / "synergyseg.yaml").read_text())
    assert "conda-forge" in env["channels"]
    assert conda_dependencies()["pytorch"][1] == "cuda*"


def test_slurm_executor_plugin_is_recent_enough():
    # < 2.7.1 adds --ntasks-per-gpu to GPU jobs (breaks PyTorch jobs); < 2.1 has no
    # slurm-status-command, which clusters without accounting need
    spec = pyproject_dependencies()["snakemake-executor-plugin-slurm"]
    assert spec == ">=2.7.1"
    from importlib.metadata import version

    from packaging.version import Version

    assert Version(version("snakemake-executor-plugin-slurm")) >= Version("2.7.1")


def test_config_readme_is_generated_from_the_schema_and_describes_every_key():
    text = (ROOT / "config" / "README.md").read_text()
    assert text == render(ROOT / "config" / "schema.yaml"), (
        "config/README.md is stale: python -m synergyseg.config_docs > config/README.md"
    )
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) > 60
    undescribed = [row.split("|")[1].strip() for row in rows if row.rstrip("| ").endswith("|")]
    assert not undescribed, f"keys without a description in config/schema.yaml: {undescribed}"
    for key in ("device", "train.fuse", "datasets.<dataset>.slices.width", "stats.alpha"):
        assert f"| `{key}` |" in text


def test_every_key_of_the_shipped_configs_is_documented():
    documented = set(
        re.findall(r"^\| `([^`]+)`", (ROOT / "config" / "README.md").read_text(), re.M)
    )

    def keys(node, prefix=""):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if prefix == "datasets":
                path = "datasets.<dataset>"
            elif prefix.endswith(".sha256"):
                path = f"{prefix}.<name>"
            yield path
            if isinstance(value, dict):
                yield from keys(value, path)

    for name in ("demo.yaml", "config.yaml"):
        config = yaml.safe_load((ROOT / "config" / name).read_text())
        assert set(keys(config)) <= documented, name


def test_catalog_files():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True
    assert "--configfile config/config.yaml" in usage["mandatory-flags"]["flags"]


@pytest.mark.e2e
def test_usable_as_a_module_from_another_folder(tmp_path):
    """Another project imports the workflow with `module` and plans the whole demo."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "mine.yaml"\n\n\n'
        "module synergyseg:\n"
        f"    snakefile:\n        {str(ROOT / 'Snakefile')!r}\n"
        "    config:\n        config\n\n\n"
        "use rule * from synergyseg as synergyseg_*\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for rule, count in [("train_regime", 9), ("predict", 9), ("make_slices", 3)]:
        assert re.search(rf"^synergyseg_{rule}\s+{count}$", result.stdout, re.M), rule
    # the module's code lives in the checkout; the run's files in the importing folder
    assert not (tmp_path / "results").exists()
    assert "src/synergyseg" in result.stdout


def test_every_test_named_in_the_failure_table_exists():
    text = (ROOT / "docs" / "failures.md").read_text()
    named = set(re.findall(r"`(test_\w+\.py)::(test_\w+)(?:\[[^\]]*\])?`", text))
    assert len(named) > 40
    missing = [
        f"{module}::{name}"
        for module, name in sorted(named)
        if not re.search(rf"^def {name}\(", (ROOT / "tests" / module).read_text(), re.M)
    ]
    assert not missing, f"docs/failures.md names tests that do not exist: {missing}"


# writers of files, and which argument names the file (a method's own object: "self")
FILE_WRITERS = {
    "to_csv": 0,
    "savefig": 0,
    "save": 0,  # np.save(path, array); torch.save(obj, path) below
    "savetxt": 0,
    "savez": 0,
    "savez_compressed": 0,
    "imwrite": 0,
    "WriteImage": 1,
    "copyfile": 1,
    "copy": 1,
    "copy2": 1,
    "move": 1,
    "ZipFile": 0,
    "write_text": "self",
    "write_bytes": "self",
    "open": 0,
}
# files written in place on purpose: parts that are published by a rename later, and sidecars
IN_PLACE = {
    ("src/synergyseg/store.py", "path"),  # .images.npy.partial, renamed by StoreWriter.close
    ("src/synergyseg/data/download.py", "partial"),  # .<name>.part, renamed once verified
}


def test_every_file_an_output_is_written_through_a_temporary_name():
    """Outputs reach their name by a rename (synergyseg.atomic), so a killed job never leaves
    one that looks finished: every call that writes a file must write to ``tmp`` (what
    ``atomic_path`` or ``atomic_directory`` yields, or a path inside it), unless listed above."""
    import ast

    offenders = []
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        if relative == "src/synergyseg/atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            if isinstance(function, ast.Attribute):
                name, owner = function.attr, ast.unparse(function.value)
            else:  # plain functions: only the builtin open (write_text(text, path) is atomic's)
                name, owner = getattr(function, "id", None), None
                if name != "open":
                    continue
            if name == "save" and owner not in ("torch", "np", "numpy"):
                continue  # a figure's or a local helper's save
            if name in ("copyfile", "copy", "copy2", "move") and owner != "shutil":
                continue  # a frame's or an array's copy()
            if name not in FILE_WRITERS:
                continue
            where = 1 if name == "save" and owner == "torch" else FILE_WRITERS[name]
            if where == "self":
                target = function.value if isinstance(function, ast.Attribute) else None
            else:
                target = node.args[where] if len(node.args) > where else None
                keywords = {k.arg: k.value for k in node.keywords}
                target = target or keywords.get("path_or_buf") or keywords.get("file")
            if name in ("open", "ZipFile"):  # reading is fine; a mode with w, a or x writes
                keywords = {k.arg: k.value for k in node.keywords}
                mode = node.args[1] if len(node.args) > 1 else keywords.get("mode")
                if not (isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax")):
                    continue
                if name == "open" and isinstance(function, ast.Attribute):
                    if "archive" in owner:  # archive.open(member, "w"): inside a temporary zip
                        continue
                    target = function.value  # path.open("w")
            text = ast.unparse(target) if target is not None else ""
            if "tmp" in text or (relative, text) in IN_PLACE:
                continue
            offenders.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "\n".join(offenders)
