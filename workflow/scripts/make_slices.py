"""Slice one dataset's raw data and write its manifest (rule make_slices)."""

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
    png_dir=snakemake.output.png,
    manifest=snakemake.output.manifest,
    threads=snakemake.threads,
)
