"""Table S2: clinical labels per regime and side, all datasets (rule table_s2)."""

from synergyseg.label_tables import table_s2_from_splits, write_table_s2
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
write_table_s2(
    table_s2_from_splits(snakemake.input.splits), snakemake.output.csv, snakemake.output.md
)
