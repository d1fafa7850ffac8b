"""Every statistics table: 1-3, S1, S3/S4, Mood, normality, synergy, split selection."""

from synergyseg.stats import StatsSettings
from synergyseg.tables import write_study_tables
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
write_study_tables(
    {dataset: f"results/{dataset}/stats" for dataset in snakemake.params.datasets},
    snakemake.params.regimes,
    StatsSettings(**snakemake.params.stats),
    out_dir="results/tables",
    test_fractions=snakemake.params.test_fractions,
)
