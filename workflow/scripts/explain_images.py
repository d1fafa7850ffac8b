"""Replicate-averaged Grad-CAM maps and intersection masks of the chosen images, per init,
for the selected split of one dataset (rule explain_images)."""

from pathlib import Path

from synergyseg.cam import explain_images
from synergyseg.gpu import select_device
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
# the inputs are the selected split's manifest and models (found through the checkpoint)
(split_csv,) = snakemake.input.split
device, claim = select_device(snakemake.config["device"])
for init in ("lmi", "tii"):
    explain_images(
        [m for m in snakemake.input.models if Path(m).parent.name == init],
        split_csv,
        Path(snakemake.input.store_images).parent,
        snakemake.input.images,
        getattr(snakemake.output, init),
        layer=snakemake.params.cam["layer"],
        target=snakemake.params.cam["target"],
        batch_size=snakemake.resources.batch_size,
        device=device,
        expected_model=snakemake.config["model"],
        threads=snakemake.threads,
    )
