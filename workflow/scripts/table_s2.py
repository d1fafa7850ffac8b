"""Table S2: clinical labels per regime and side, all datasets (rule table_s2)."""

from pathlib import Path

import pandas as pd

from synergyseg.tables import label_table, write_table_s2
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
parts = []
for path in map(Path, snakemake.input.splits):
    dataset, regime = path.parts[-3], path.stem
    frame = pd.read_csv(path, dtype={"case": str, "label": str})
    parts.append(label_table({regime: frame}, dataset))
write_table_s2(pd.concat(parts, ignore_index=True), snakemake.output.csv, snakemake.output.md)
