"""Synthesise one phantom dataset in its source's raw layout (rule make_phantom)."""

from synergyseg.data import phantoms
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
phantoms.write_phantom(
    snakemake.params.format,
    snakemake.params.phantom,
    seed=phantoms.dataset_seed(snakemake.params.seed, snakemake.wildcards.dataset),
    out_dir=snakemake.output[0],
)
