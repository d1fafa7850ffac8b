"""Test-set probabilities of every model of one regime, one pass over the images (rule predict)."""

from pathlib import Path

from synergyseg.gpu import select_device
from synergyseg.predict import predict_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
device, claim = select_device(snakemake.config["device"])
predict_regime(
    list(snakemake.input.models),
    snakemake.input.split,
    Path(snakemake.input.store_images).parent,
    list(snakemake.output),
    batch_size=snakemake.resources.batch_size,
    device=device,
    threads=snakemake.threads,
    expected_model=snakemake.config["model"],  # a check, not a param: changes re-run nothing
)
