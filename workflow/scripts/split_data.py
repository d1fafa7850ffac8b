"""One seeded random train/test split of a slice manifest (rule split_data)."""

import pandas as pd

from synergyseg.atomic import write_csv
from synergyseg.seeds import regime_seed
from synergyseg.splits import SplitSettings, random_split
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = f"split{snakemake.wildcards.index}"
manifest = pd.read_csv(snakemake.input.manifest, dtype={"case": str, "label": str})
split = random_split(
    manifest,
    SplitSettings(**snakemake.params.settings),
    seed=regime_seed(snakemake.params.seed, snakemake.wildcards.dataset, regime),
)
write_csv(split, snakemake.output[0])
