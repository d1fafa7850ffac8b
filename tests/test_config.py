"""Configuration: the shipped configs validate; bad keys, types and values are named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from synergyseg.config import ConfigError, check_config, schema_problem

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "config" / "schema.yaml")


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def validated(config):
    config = copy.deepcopy(config)
    validate(config, SCHEMA, set_default=True)
    check_config(config)
    return config


@pytest.mark.parametrize("name", ["demo.yaml", "config.yaml"])
def test_shipped_configs_are_valid(name):
    config = validated(load(name))
    assert config["splits"]["test_fraction"] == 0.2


def test_defaults_are_filled():
    config = validated(
        {
            "datasets": {
                "x": {
                    "format": "kits19",
                    "source": "phantom",
                    "phantom": {"n": 4},
                    "slices": {"width": 64, "height": 64},
                }
            }
        }
    )
    assert config["seed"] == 2021
    assert config["depletion"]["train_fractions"] == [0.6, 0.4, 0.2, 0.1]
    assert config["datasets"]["x"]["slices"]["ct_window"] == [-512, 512]
    assert config["train"]["compile_cache"] == "resources/compile_cache"


def test_full_protocol_has_five_splits_and_four_depletions():
    config = validated(load("config.yaml"))
    assert config["splits"]["n_splits"] == 5
    assert len(config["depletion"]["train_fractions"]) == 4
    assert sorted(config["datasets"]) == ["kidney", "prostate", "skin"]


def test_unknown_key_is_named():
    config = load("demo.yaml")
    config["splits"]["tset_fraction"] = 0.3
    with pytest.raises(WorkflowError, match="'tset_fraction' was unexpected"):
        validated(config)


def test_impossible_test_fraction_is_named():
    config = load("demo.yaml")
    config["splits"]["test_fraction"] = 1.3
    with pytest.raises(WorkflowError, match=r"(?s)1.3 is greater.*\['splits'\]\['test_fraction'\]"):
        validated(config)


def test_wrong_type_is_named():
    config = load("demo.yaml")
    config["datasets"]["skin"]["slices"]["width"] = "wide"
    with pytest.raises(WorkflowError, match=r"(?s)'wide' is not of type 'integer'.*\['width'\]"):
        validated(config)


def test_slice_size_must_suit_the_network():
    config = load("demo.yaml")
    config["datasets"]["kidney"]["slices"]["width"] = 500
    with pytest.raises(WorkflowError, match="multiple of 32"):
        validated(config)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["depletion"].update(train_fractions=[0.4, 0.6]), "depletion.train_fractions"),
        (lambda c: c["depletion"].update(train_fractions=[0.9]), "depletion.train_fractions"),
        (lambda c: c["stats"]["selection"].update(fixed=3), "stats.selection.fixed"),
        (lambda c: c["datasets"]["prostate"].update(source="download"), "datasets.prostate.source"),
        (lambda c: c["datasets"]["skin"].update(source="local"), "datasets.skin.path"),
        (
            lambda c: c["datasets"]["kidney"]["slices"].update(ct_window=[100, -100]),
            "datasets.kidney.slices.ct_window",
        ),
        (lambda c: c["datasets"]["kidney"].update(source="download"), "datasets.kidney.cases"),
        (
            lambda c: c["datasets"]["kidney"].update(source="download", cases=300),
            "datasets.kidney.cases",  # 210 labelled cases: the rest would fail to download
        ),
        (lambda c: c["datasets"]["skin"].update(source="download"), "datasets.skin.parts"),
        (lambda c: c["datasets"]["kidney"].update(cases=3), "datasets.kidney.cases"),  # phantom
        (
            lambda c: c["datasets"]["kidney"].update(labels_csv="l.csv"),
            "datasets.kidney.labels_csv",
        ),
        (lambda c: c["train"].update(inits=["tii"]), "train.inits"),  # the depletion needs both
    ],
)
def test_cross_field_errors_name_the_key(edit, key):
    config = load("demo.yaml")
    edit(config)
    with pytest.raises(ConfigError) as err:
        validated(config)
    assert err.value.key == key and f"config key '{key}'" in str(err.value)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["datasets"]["skin"].update(epochs=10.0), "datasets.skin.epochs"),
        (
            lambda c: c["datasets"]["skin"]["slices"].update(width=96.0),
            "datasets.skin.slices.width",
        ),
        (lambda c: c["train"].update(replicates=2.0), "train.replicates"),
    ],
)
def test_whole_numbers_written_as_decimals_are_named(edit, key):
    """JSON Schema counts 10.0 as an integer; range(10.0) in a training job would not."""
    config = load("demo.yaml")
    edit(config)
    problem = schema_problem(config, SCHEMA)
    assert problem is not None and problem.key == key, problem
    assert "is not of type 'integer'" in str(problem)
    assert schema_problem(load("demo.yaml"), SCHEMA) is None


@pytest.mark.parametrize("configfile", ["demo.yaml", "config.yaml"])
def test_every_report_caption_renders_with_the_shipped_configs(configfile):
    """Report captions are Jinja templates over the config: a key renamed in the schema, or a
    typo, would only show when a finished run builds its report. Rendered strictly here, the
    way ``snakemake --report`` renders them, for every dataset."""
    import types

    import jinja2

    config = yaml.safe_load((ROOT / "config" / configfile).read_text())
    validate(config, str(ROOT / "config" / "schema.yaml"), set_default=True)
    captions = sorted((ROOT / "report").rglob("*.rst"))
    assert len(captions) > 15
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for dataset in config["datasets"]:
        snakemake = types.SimpleNamespace(
            config=config, wildcards=types.SimpleNamespace(dataset=dataset)
        )
        for caption in captions:
            text = environment.from_string(caption.read_text()).render(snakemake=snakemake)
            assert "{{" not in text and "{%" not in text, caption
    for caption in captions:  # the train:test share is the config's, given once, in workflow.rst
        assert caption.name == "workflow.rst" or "80:20" not in caption.read_text(), caption


def test_compiled_kernels_are_kept_in_the_project_unless_the_user_chose_a_folder(
    tmp_path, monkeypatch
):
    """The workflow points torch.compile's cache at a folder of the project (absolute, as jobs
    may start elsewhere), which is the variable PyTorch reads; a folder the user set in the
    environment wins, and an empty setting leaves PyTorch's default."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    from synergyseg.workflow import COMPILE_CACHE_VARIABLE, compile_cache_environment

    monkeypatch.chdir(tmp_path)
    environment = compile_cache_environment("resources/compile_cache", {})
    assert environment == {COMPILE_CACHE_VARIABLE: str(tmp_path / "resources" / "compile_cache")}
    monkeypatch.setenv(COMPILE_CACHE_VARIABLE, environment[COMPILE_CACHE_VARIABLE])
    assert cache_dir() == environment[COMPILE_CACHE_VARIABLE]  # where Inductor will write
    assert compile_cache_environment("resources/compile_cache", {COMPILE_CACHE_VARIABLE: "x"}) == {}
    assert compile_cache_environment(None, {}) == {} == compile_cache_environment("", {})
    # a folder no job could make fails the run before any job, naming the key
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match=r"train\.compile_cache.*a_file is not a folder"):
        compile_cache_environment("a_file/cache", {})
