"""Per-image replicate medians, tests and normality of every regime of one dataset."""

from synergyseg.atomic import write_csv
from synergyseg.selection import regime_files
from synergyseg.stats import StatsSettings, regime_statistics
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
settings = StatsSettings(**snakemake.params.stats)
for position, regime in enumerate(snakemake.params.regimes):
    metrics = regime_files(snakemake.input.metrics, regime)
    per_image, tests, normality = regime_statistics(metrics, settings)
    write_csv(per_image, snakemake.output.per_image[position])
    write_csv(tests, snakemake.output.tests[position])
    write_csv(normality, snakemake.output.normality[position])
