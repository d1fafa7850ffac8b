"""Pretrained weights → one checkpoint per dataset × regime × init × replicate → predictions."""


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
        code=package_files(
            "pretrain.py", "model.py", "preprocess.py", "seeds.py", "io.py"
        ),
    output:
        "resources/weights/pretrained_encoder.pth",
    log:
        "logs/pretrain_encoder/pretrained_encoder.log",
    benchmark:
        "benchmarks/pretrain_encoder/pretrained_encoder.tsv"
    conda:
        "../envs/synergyseg.yaml"
    threads: 2
    params:
        pretrain=canonical(config["pretrained"]["pretrain"]),
        width=config["model"]["width"],
        seed=config["seed"],
    script:
        "../workflow/scripts/pretrain_encoder.py"


rule train_model:
    input:
        split="results/{dataset}/splits/{regime}.csv",
        weights=pretrained_weights,
        code=package_files(
            "model.py",
            "train.py",
            "samples.py",
            "preprocess.py",
            "weights.py",
            "gpu.py",
            "seeds.py",
            "io.py",
            "config.py",
        ),
    output:
        "results/{dataset}/models/{regime}/{init}/rep{rep}.pt",
    log:
        main="logs/train_model/{dataset}/{regime}/{init}/rep{rep}.log",
        history="logs/train_model/{dataset}/{regime}/{init}/rep{rep}.epochs.csv",
    benchmark:
        "benchmarks/train_model/{dataset}/{regime}/{init}/rep{rep}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
    params:
        train=training_options(),
        model=canonical(config["model"]),
        epochs=dataset_setting("epochs"),
        seed=config["seed"],
    script:
        "../workflow/scripts/train_model.py"


rule predict:
    input:
        model="results/{dataset}/models/{regime}/{init}/rep{rep}.pt",
        split="results/{dataset}/splits/{regime}.csv",
        code=package_files(
            "predict.py", "model.py", "samples.py", "preprocess.py", "gpu.py", "io.py"
        ),
    output:
        "results/{dataset}/predictions/{regime}/{init}/rep{rep}.npz",
    log:
        "logs/predict/{dataset}/{regime}/{init}/rep{rep}.log",
    benchmark:
        "benchmarks/predict/{dataset}/{regime}/{init}/rep{rep}.tsv"
    conda:
        "../envs/synergyseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=config["train"]["mem_mb"],
        # a resource, not a param: it fits the hardware and never changes the results, so
        # changing it (or --set-resources predict:batch_size=N) re-predicts nothing
        batch_size=config["predict"]["batch_size"],
    script:
        "../workflow/scripts/predict.py"
