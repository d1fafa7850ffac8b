"""The panels of one dataset's chosen test images (rule plot_examples): Fig 2-5 segmentation
and Grad-CAM, Fig 6 synergy."""

from pathlib import Path

from synergyseg.figures.panels import (
    gradcam_panel,
    load_showcase,
    segmentation_panel,
    synergy_panel,
)
from synergyseg.figures.style import save_panel
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
# the selected split's manifest, split<k>.csv (found through the checkpoint)
(split_csv,) = inputs.split
showcase = load_showcase(
    snakemake.wildcards.dataset,
    Path(split_csv).stem,
    inputs.images,
    split_csv,
    Path(inputs.store_images).parent,
    {"lmi": inputs.cam_lmi, "tii": inputs.cam_tii},
)
for name, panel in (
    ("segmentation", segmentation_panel),
    ("gradcam", gradcam_panel),
    ("synergy", synergy_panel),
):
    save_panel(panel(showcase), out, name, snakemake.params.dpi)
