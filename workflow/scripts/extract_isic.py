"""Unpack the ISIC zips into one folder (rule extract_isic)."""

from synergyseg.atomic import atomic_directory
from synergyseg.data.download import extract_zip
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
with atomic_directory(snakemake.output[0]) as tmp:
    for archive in snakemake.input.zips:
        extract_zip(archive, tmp)
