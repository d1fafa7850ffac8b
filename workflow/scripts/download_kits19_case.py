"""Fetch one KiTS19 case (imaging from the data host, segmentation from the kits19 repository)."""

from synergyseg.data.download import KITS19_IMAGING_URL, KITS19_SEGMENTATION_URL, fetch
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
case = int(snakemake.wildcards.case)
sha = snakemake.params.sha256
fetch(
    KITS19_IMAGING_URL.format(case=case),
    snakemake.output.imaging,
    sha.get(f"case_{case:05d}/imaging.nii.gz"),
)
fetch(
    KITS19_SEGMENTATION_URL.format(case=case),
    snakemake.output.segmentation,
    sha.get(f"case_{case:05d}/segmentation.nii.gz"),
)
