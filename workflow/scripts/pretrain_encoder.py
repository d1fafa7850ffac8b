"""Pretrain the (narrow) encoder on a natural-image-like task for the offline demo's TII."""

from synergyseg.pretrain import PretrainSpec, pretrain_encoder
from synergyseg.seeds import regime_seed
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
spec = PretrainSpec(width=snakemake.params.width, **snakemake.params.pretrain)
pretrain_encoder(
    spec,
    seed=regime_seed(snakemake.params.seed, "pretrain"),
    out=snakemake.output[0],
    threads=snakemake.threads,
)
