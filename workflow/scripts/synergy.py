"""Union and intersection of the TII and LMI masks, per test image (rule synergy)."""

from synergyseg.io import write_csv
from synergyseg.synergy import synergy_table
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
predictions = {"lmi": snakemake.input.lmi, "tii": snakemake.input.tii}
write_csv(synergy_table(predictions, snakemake.input.split), snakemake.output[0])
