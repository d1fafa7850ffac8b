"""Replicate-averaged Grad-CAM maps and intersection masks of the chosen images."""

from synergyseg.cam import explain_images
from synergyseg.gpu import select_device
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
device, claim = select_device()
explain_images(
    snakemake.input.models,
    snakemake.input.split,
    snakemake.input.images,
    snakemake.output[0],
    layer=snakemake.params.cam["layer"],
    target=snakemake.params.cam["target"],
    batch_size=snakemake.resources.batch_size,
    device=device,
    threads=snakemake.threads,
)
