"""Deplete the previous regime's training set to the next fraction (rule deplete_split).

The first depletion regime starts from the split chosen by the statistics stage (the rule's
input function reads the selection)."""

from synergyseg.atomic import write_csv
from synergyseg.manifests import read_manifest
from synergyseg.seeds import regime_seed
from synergyseg.splits import SplitSettings, deplete
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = f"train{snakemake.wildcards.percent}"
previous = read_manifest(snakemake.input.previous)
depleted = deplete(
    previous,
    int(snakemake.wildcards.percent) / 100,
    SplitSettings(**snakemake.params.settings),
    seed=regime_seed(snakemake.params.seed, snakemake.wildcards.dataset, regime),
)
write_csv(depleted, snakemake.output[0])
