"""Fetch one KiTS19 case (imaging from the data host, segmentation from the kits19 repository)."""

from synergyseg.data.download import KITS19_IMAGING_URL, KITS19_SEGMENTATION_URL, fetch
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
case = int(snakemake.wildcards.case)
# Read here, not passed as params: a pin added for one file must not look like a changed job
# for every download (Snakemake would fetch them all again, then re-slice and retrain).
pins = snakemake.config["datasets"][snakemake.wildcards.dataset].get("sha256", {})
fetch(
    KITS19_IMAGING_URL.format(case=case),
    snakemake.output.imaging,
    pins.get(f"case_{case:05d}/imaging.nii.gz"),
)
fetch(
    KITS19_SEGMENTATION_URL.format(case=case),
    snakemake.output.segmentation,
    pins.get(f"case_{case:05d}/segmentation.nii.gz"),
)
