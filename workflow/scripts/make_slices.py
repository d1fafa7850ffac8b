"""Slice one dataset's raw data into its slice store and manifest (rule make_slices)."""

from pathlib import Path

from synergyseg.data.slicing import SliceSettings, find_records, make_slices
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
slices = snakemake.params.slices
settings = SliceSettings(
    width=slices["width"],
    height=slices["height"],
    ct_window=tuple(slices.get("ct_window", (-512, 512))),
    consensus=slices.get("consensus", "majority"),
    mask_foreground=slices.get("mask_foreground", 255),
)
records = find_records(
    snakemake.params.format,
    snakemake.params.raw,
    snakemake.params.labels,
    cases=snakemake.params.cases,
)
make_slices(
    snakemake.params.format,
    records,
    settings,
    store_dir=Path(snakemake.output.store_images).parent,
    manifest=snakemake.output.manifest,
    png_dir=snakemake.output.get("png"),
    threads=snakemake.threads,
)
