"""Choose the test images the figures show, from the selected split's eq. 2 masks (the masks
the panels draw), as scored in its synergy table (one dataset)."""

from synergyseg.atomic import write_csv
from synergyseg.showcase import ShowcaseSettings, choose_from_synergy
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
settings = ShowcaseSettings(**snakemake.params.images)
chosen = choose_from_synergy(snakemake.input.synergy[0], settings, snakemake.params.max_labels)
write_csv(chosen, snakemake.output[0])
