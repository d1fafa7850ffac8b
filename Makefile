# Two commands: `make demo` runs the workflow on the embedded demo config, `make test` the tests.
# Both create .venv and install the project first (only Python >= 3.11 and the package index needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The report is written by the same Snakemake process once the run succeeds
# (a second `snakemake --report` would pay Snakemake's start-up and DAG again).
demo: $(STAMP)
	$(BIN)/snakemake --cores all --configfile config/demo.yaml --report results/report.html --report-after-run
	@echo
	@echo "Done. Results are under results/:"
	@echo "  results/<dataset>/slices/               the slice store (images.npy, masks.npy), manifest, PNG copies"
	@echo "  results/<dataset>/splits/<regime>.csv   train/test manifests (split1.., train40..)"
	@echo "  results/tables/table_s2.md              clinical labels per split and side"
	@echo "  results/<dataset>/models/...            TII and LMI checkpoints per regime and replicate"
	@echo "  results/<dataset>/predictions/...       test-set probability maps (uint8 .npz)"
	@echo "  results/<dataset>/metrics/...           per-image metrics of every model"
	@echo "  results/tables/*.md                     Tables 1-3, S1-S4, Mood's tests, synergy"
	@echo "  results/<dataset>/cam/...               chosen figure images (images.csv) and Grad-CAM maps"
	@echo "  results/figures/<dataset>/*.png|pdf     figure panels (Fig 2-6, S1-S4 style, training, depletion)"
	@echo "  results/report.html                     every figure and table, captioned: open it in a browser"

# Two workers, one test file each at a time: the Snakemake end-to-end tests and the real-SLURM
# test (mostly waiting on the scheduler) overlap instead of queueing. Files are handed out in
# collection order (tests/conftest.py puts those two first), not by their number of tests.
test: $(STAMP)
	sh tests/install-slurm.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow bench
	$(BIN)/ruff format --check src tests workflow bench
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

format: $(STAMP)
	$(BIN)/ruff check --fix src tests workflow bench
	$(BIN)/ruff format src tests workflow bench
	$(BIN)/snakefmt Snakefile rules

clean:
	rm -rf results resources/phantom logs benchmarks .snakemake
