"""Choose the base split of the depletion regimes: most † marks, ties to the lowest index."""

from synergyseg.atomic import write_csv
from synergyseg.selection import selection_from_metrics
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
_, record = selection_from_metrics(
    snakemake.input.metrics, snakemake.params.practical_difference, snakemake.params.fixed
)
write_csv(record, snakemake.output[0])
