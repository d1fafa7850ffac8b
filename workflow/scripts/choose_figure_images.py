"""Choose the test images the figures show for one dataset and 80:20 split (a CSV record)."""

from synergyseg.io import write_csv
from synergyseg.selection import per_image_table, read_metric_tables
from synergyseg.showcase import ShowcaseSettings, choose_images
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
# from the metric files, not the statistics: a new test setting must not redo the Grad-CAMs
per_image = per_image_table(read_metric_tables(snakemake.input.metrics))
settings = ShowcaseSettings(**snakemake.params.images)
write_csv(choose_images(per_image, settings), snakemake.output[0])
