"""Per-image metrics of one model on its test images (rule compute_metrics)."""

from synergyseg.io import write_csv
from synergyseg.metrics import model_metrics
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
write_csv(model_metrics(snakemake.input.predictions, snakemake.input.split), snakemake.output[0])
