"""One seeded random train/test split of a slice manifest (rule split_data)."""

from synergyseg.atomic import write_csv
from synergyseg.manifests import read_manifest
from synergyseg.seeds import regime_seed
from synergyseg.splits import SplitSettings, check_split_count, random_split
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = f"split{snakemake.wildcards.index}"
manifest_csv = snakemake.input.manifest
manifest = read_manifest(manifest_csv)
settings = SplitSettings(**snakemake.params.settings)
# read from the config, not a param: a larger n_splits must not re-run the existing splits
check_split_count(manifest, settings, snakemake.config["splits"]["n_splits"], manifest_csv)
split = random_split(
    manifest,
    settings,
    seed=regime_seed(snakemake.params.seed, snakemake.wildcards.dataset, regime),
    source=manifest_csv,
)
write_csv(split, snakemake.output[0])
