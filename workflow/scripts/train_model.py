"""Train one VGG16-UNet (one split × init × replicate) for the train_model rule."""

from synergyseg.gpu import select_device
from synergyseg.train import TrainSpec, train_model
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log.main)
spec = TrainSpec.from_params(
    snakemake.params.train,
    snakemake.params.model,
    epochs=snakemake.params.epochs,
    seed=snakemake.params.seed,
    wildcards=snakemake.wildcards,
)
device, claim = select_device()
train_model(
    spec,
    split_csv=snakemake.input.split,
    out=snakemake.output[0],
    history_csv=snakemake.log.history,
    weights=snakemake.input.weights or None,
    device=device,
    threads=snakemake.threads,
)
