"""Train one VGG16-UNet (one regime x init x replicate) for the train_model rule."""

from pathlib import Path

from synergyseg.gpu import select_device
from synergyseg.train import TrainSpec, train_model
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
wildcards, params = snakemake.wildcards, snakemake.params
spec = TrainSpec.from_params(
    params.train,
    params.model,
    params.epochs,
    params.seed,
    wildcards.dataset,
    wildcards.regime,
    wildcards.init,
    wildcards.rep,
)
device, claim = select_device()
train_model(
    spec,
    split_csv=snakemake.input.split,
    store_dir=Path(snakemake.input.store_images).parent,
    out=snakemake.output.model,
    history_csv=snakemake.output.history,
    weights=snakemake.input.weights or None,
    device=device,
    threads=snakemake.threads,
    cuda_graphs=bool(snakemake.resources.cuda_graphs),
    compile_model=bool(snakemake.resources.compile_model),
)
