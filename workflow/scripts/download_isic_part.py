"""Fetch one ISIC 2018 Task 1 zip, verifying its SHA-256 when the config gives one."""

from synergyseg.data.download import ISIC_2018_TASK1_URL, fetch
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
part = snakemake.wildcards.part
# Read here, not passed as params: a pin added for one zip must not look like a changed job
# for every download (Snakemake would fetch them all again, then re-slice and retrain).
pins = snakemake.config["datasets"][snakemake.wildcards.dataset].get("sha256", {})
fetch(ISIC_2018_TASK1_URL.format(name=part), snakemake.output[0], pins.get(f"{part}.zip"))
