"""Per-image replicate medians, tests and normality for one dataset and regime."""

from synergyseg.atomic import write_csv
from synergyseg.stats import StatsSettings, regime_statistics
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
settings = StatsSettings(**snakemake.params.stats)
per_image, tests, normality = regime_statistics(snakemake.input.metrics, settings)
write_csv(per_image, snakemake.output.per_image)
write_csv(tests, snakemake.output.tests)
write_csv(normality, snakemake.output.normality)
