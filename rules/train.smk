"""Pretrained weights → the checkpoints of every dataset × regime × init × replicate.

With `train.fuse` (the default) one GPU job per regime trains all its models side by side,
each exactly as it would be trained alone (synergyseg.lanes); without it, one job per model.
"""


localrules:
    fetch_imagenet_weights,


rule fetch_imagenet_weights:
    output:
        "resources/weights/imagenet_vgg16.pth",
    log:
        "logs/fetch_imagenet_weights/imagenet_vgg16.log",
    conda:
        "../envs/synergyseg.yaml"
    script:
        "../workflow/scripts/fetch_imagenet_weights.py"


rule pretrain_encoder:
    input:
        code=script_code("pretrain_encoder"),
    output:
        "resources/weights/pretrained_encoder.pth",
    log:
        "logs/pretrain_encoder/pretrained_encoder.log",
    benchmark:
        "benchmarks/pretrain_encoder/pretrained_encoder.tsv"
    # First, beside the data preparation on the other cores: every TII model waits for it.
    priority: 70
    conda:
        "../envs/synergyseg.yaml"
    # One thread, whatever --cores allows: on the CPU the weight gradients are summed in
    # per-thread parts, so another thread count trains another encoder (and Snakemake lowers a
    # rule's threads to --cores, which would make the demo's results depend on the machine).
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
    params:
        pretrain=canonical(config["pretrained"]["pretrain"]),
        width=config["model"]["width"],
        seed=config["seed"],
    script:
        "../workflow/scripts/pretrain_encoder.py"


if config["train"]["fuse"]:

    rule train_regime:
        input:
            **store_files(),
            split="results/{dataset}/splits/{regime}.csv",
            weights=regime_weights,
            code=script_code("train_models"),
        output:
            models=regime_checkpoints(),
            histories=regime_histories(),
        log:
            "logs/train_regime/{dataset}/{regime}.log",
        benchmark:
            "benchmarks/train_regime/{dataset}/{regime}.tsv"
        priority: 40
        conda:
            "../envs/synergyseg.yaml"
        threads: config["train"]["threads"]
        resources:
            gpu=1,
            mem_mb=train_mem_mb,
            runtime=train_runtime,
            cuda_graphs=int(config["train"]["cuda_graphs"]),  # speed only: not a param
            compile_model=int(config["train"]["compile"]),
        params:
            train=training_options(),
            model=canonical(config["model"]),
            epochs=dataset_setting("epochs"),
            seed=config["seed"],
            models=[[init, rep] for init in INITS for rep in REPLICATES],
        script:
            "../workflow/scripts/train_models.py"

else:

    rule train_model:
        input:
            **store_files(),
            split="results/{dataset}/splits/{regime}.csv",
            weights=pretrained_weights,
            code=script_code("train_models"),
        output:
            models="results/{dataset}/models/{regime}/{init}/rep{rep}.pt",
            histories="results/{dataset}/models/{regime}/{init}/rep{rep}.history.csv",
        log:
            "logs/train_model/{dataset}/{regime}/{init}/rep{rep}.log",
        benchmark:
            "benchmarks/train_model/{dataset}/{regime}/{init}/rep{rep}.tsv"
        priority: 40
        conda:
            "../envs/synergyseg.yaml"
        threads: config["train"]["threads"]
        resources:
            gpu=1,
            mem_mb=train_mem_mb,
            runtime=train_runtime,
            cuda_graphs=int(config["train"]["cuda_graphs"]),
            compile_model=int(config["train"]["compile"]),
        params:
            train=training_options(),
            model=canonical(config["model"]),
            epochs=dataset_setting("epochs"),
            seed=config["seed"],
            models=lambda wildcards: [[wildcards.init, int(wildcards.rep)]],
        script:
            "../workflow/scripts/train_models.py"


rule predict:
    input:
        **store_files(),
        models=regime_checkpoints(),
        split="results/{dataset}/splits/{regime}.csv",
        code=script_code("predict"),
    output:
        regime_predictions(),
    log:
        "logs/predict/{dataset}/{regime}.log",
    benchmark:
        "benchmarks/predict/{dataset}/{regime}.tsv"
    priority: 30
    conda:
        "../envs/synergyseg.yaml"
    threads: config["predict"]["threads"]
    resources:
        gpu=1,
        mem_mb=predict_mem_mb,
        runtime=predict_runtime,
        # a resource, not a param: it fits the hardware and never changes the results, so
        # changing it (or --set-resources predict:batch_size=N) re-predicts nothing
        batch_size=config["predict"]["batch_size"],
    script:
        "../workflow/scripts/predict.py"
