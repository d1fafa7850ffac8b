"""Deplete the previous regime's training set to the next fraction (rule deplete_split).

The first depletion regime starts from the split chosen by the statistics stage."""

import pandas as pd

from synergyseg.atomic import write_csv
from synergyseg.seeds import regime_seed
from synergyseg.selection import pick_regime, selected_regime
from synergyseg.splits import SplitSettings, deplete
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = f"train{snakemake.wildcards.percent}"
if "selection" in snakemake.input.keys():
    previous_csv = pick_regime(snakemake.input.splits, selected_regime(snakemake.input.selection))
else:
    previous_csv = snakemake.input.previous
previous = pd.read_csv(previous_csv, dtype={"case": str, "label": str})
depleted = deplete(
    previous,
    int(snakemake.wildcards.percent) / 100,
    SplitSettings(**snakemake.params.settings),
    seed=regime_seed(snakemake.params.seed, snakemake.wildcards.dataset, regime),
)
write_csv(depleted, snakemake.output[0])
