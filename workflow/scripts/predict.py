"""Probabilities of one trained model on its regime's test images (rule predict)."""

from synergyseg.gpu import select_device
from synergyseg.predict import predict_split
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
device, claim = select_device()
predict_split(
    snakemake.input.model,
    snakemake.input.split,
    snakemake.output[0],
    batch_size=snakemake.resources.batch_size,
    device=device,
    threads=snakemake.threads,
)
