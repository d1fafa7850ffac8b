"""Train the models of one job side by side on one device: every init x replicate of a regime
(rule train_regime) or a single model (rule train_model, `train.fuse: false`)."""

from pathlib import Path

from synergyseg.gpu import select_device
from synergyseg.train import TrainSpec, train_models
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
wildcards, params = snakemake.wildcards, snakemake.params
specs = [
    TrainSpec.from_params(
        params.train,
        params.model,
        params.epochs,
        params.seed,
        wildcards.dataset,
        wildcards.regime,
        init,
        rep,
    )
    for init, rep in params.models
]
device, claim = select_device(snakemake.config["device"])
train_models(
    specs,
    split_csv=snakemake.input.split,
    store_dir=Path(snakemake.input.store_images).parent,
    outs=list(snakemake.output.models),
    history_csvs=list(snakemake.output.histories),
    weights=snakemake.input.weights or None,
    device=device,
    threads=snakemake.threads,
    cuda_graphs=bool(snakemake.resources.cuda_graphs),
    compile_model=bool(snakemake.resources.compile_model),
    code_files=list(snakemake.input.code),
    # read here, not a param: how often a job saves changes no model, so it re-plans none
    state_every_s=60 * snakemake.config["train"]["resume_state_minutes"],
)
