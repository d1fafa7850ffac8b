"""Fetch torchvision's VGG16 IMAGENET1K_V1 weights once, verified (rule fetch_imagenet_weights)."""

from synergyseg.data.download import fetch_imagenet_weights
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
fetch_imagenet_weights(snakemake.output[0])
