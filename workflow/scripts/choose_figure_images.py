"""Choose the test images the figures show, from the selected split's metrics (one dataset)."""

from synergyseg.atomic import write_csv
from synergyseg.selection import per_image_table, read_metric_tables, regime_files, selected_regime
from synergyseg.showcase import ShowcaseSettings, choose_images
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = selected_regime(snakemake.input.selection)
# from the metric files, not the statistics: a new test setting must not redo the Grad-CAMs
metrics = regime_files(snakemake.input.metrics, regime)
per_image = per_image_table(read_metric_tables(metrics))
settings = ShowcaseSettings(**snakemake.params.images)
write_csv(choose_images(per_image, settings), snakemake.output[0])
