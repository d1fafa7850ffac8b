"""Check that placed-by-hand data has the expected layout and record what was found."""

from synergyseg.data.slicing import find_records, inventory
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
records = find_records(snakemake.params.format, snakemake.params.raw, snakemake.params.labels)
inventory(records, snakemake.output[0])
