"""Fig 2-5 segmentation and Grad-CAM panels and the Fig 6 synergy panel for one dataset."""

from pathlib import Path

from synergyseg.figures.panels import (
    gradcam_panel,
    load_showcase,
    segmentation_panel,
    synergy_panel,
)
from synergyseg.figures.style import save_figure
from synergyseg.selection import pick_regime, selected_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = selected_regime(snakemake.input.selection)
showcase = load_showcase(
    snakemake.wildcards.dataset,
    regime,
    snakemake.input.images,
    pick_regime(snakemake.input.splits, regime),
    Path(snakemake.input.store_images).parent,
    {"lmi": snakemake.input.cam_lmi, "tii": snakemake.input.cam_tii},
)
out, dpi = snakemake.output, snakemake.params.dpi
save_figure(segmentation_panel(showcase), out.segmentation_png, out.segmentation_pdf, dpi)
save_figure(gradcam_panel(showcase), out.gradcam_png, out.gradcam_pdf, dpi)
save_figure(synergy_panel(showcase), out.synergy_png, out.synergy_pdf, dpi)
