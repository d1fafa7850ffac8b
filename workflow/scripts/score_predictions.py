"""Per-image metrics of every model of one regime, and the TII/LMI synergy table."""

from pathlib import Path

from synergyseg.scoring import score_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
models = [(init, int(rep)) for init, rep in snakemake.params.models]
score_regime(
    dict(zip(models, snakemake.input.predictions, strict=True)),
    snakemake.input.split,
    Path(snakemake.input.store_images).parent,
    dict(zip(models, snakemake.output.metrics, strict=True)),
    synergy_out=snakemake.output.get("synergy"),
)
