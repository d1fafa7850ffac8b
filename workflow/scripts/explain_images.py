"""Replicate-averaged Grad-CAM maps and intersection masks of the chosen images, per init,
for the selected split of one dataset (rule explain_images)."""

from pathlib import Path

from synergyseg.cam import explain_images
from synergyseg.gpu import select_device
from synergyseg.selection import pick_regime, regime_files, selected_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = selected_regime(snakemake.input.selection)
device, claim = select_device(snakemake.config["device"])
for init in ("lmi", "tii"):
    explain_images(
        [m for m in regime_files(snakemake.input.models, regime) if f"/{init}/" in m],
        pick_regime(snakemake.input.splits, regime),
        Path(snakemake.input.store_images).parent,
        snakemake.input.images,
        getattr(snakemake.output, init),
        layer=snakemake.params.cam["layer"],
        target=snakemake.params.cam["target"],
        batch_size=snakemake.resources.batch_size,
        device=device,
        expected_model=snakemake.config["model"],
    )
