"""benign/malignant per ISIC image from the archive API, cached as a CSV (unknown when offline)."""

from synergyseg.data.download import write_isic_labels
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
write_isic_labels(snakemake.input.isic, snakemake.output[0], fetch=snakemake.params.fetch)
