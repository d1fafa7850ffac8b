"""Fetch one ISIC 2018 Task 1 zip, verifying its SHA-256 when the config gives one."""

from synergyseg.data.download import ISIC_2018_TASK1_URL, fetch
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
part = snakemake.wildcards.part
fetch(
    ISIC_2018_TASK1_URL.format(name=part),
    snakemake.output[0],
    snakemake.params.sha256.get(f"{part}.zip"),
)
