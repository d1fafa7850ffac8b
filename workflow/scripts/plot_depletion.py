"""Medians against the training share for one dataset: Table 3 as a picture."""

import pandas as pd

from synergyseg.figures.curves import depletion_figure
from synergyseg.figures.style import save_figure
from synergyseg.selection import read_selection
from synergyseg.workflow import pick_regime, redirect_logging

redirect_logging(snakemake.log[0])
selected = f"split{read_selection(snakemake.input.selection)}"
shares = {selected: round(100 * (1 - snakemake.params.splits["test_fraction"]))}
shares |= {regime: int(regime.removeprefix("train")) for regime in snakemake.params.depletions}
tests = {share: pd.read_csv(pick_regime(snakemake.input.tests, r)) for r, share in shares.items()}
title = f"{snakemake.wildcards.dataset}: depletion from {selected} (medians of per-image metrics)"
save_figure(
    depletion_figure(tests, title), snakemake.output.png, snakemake.output.pdf, snakemake.params.dpi
)
