"""Choose the test images the figures show, from the selected split's eq. 2 masks (the masks
the panels draw), as scored in its synergy table (one dataset)."""

import pandas as pd

from synergyseg.atomic import write_csv
from synergyseg.showcase import ShowcaseSettings, choose_images, displayed_mask_table
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
synergy = pd.read_csv(snakemake.input.synergy[0], dtype={"slice_id": str, "label": str})
settings = ShowcaseSettings(**snakemake.params.images)
chosen = choose_images(displayed_mask_table(synergy), settings, snakemake.params.max_labels)
write_csv(chosen, snakemake.output[0])
