"""Medians against the training share for one dataset: Table 3 as a picture."""

import pandas as pd

from synergyseg.figures.curves import depletion_figure
from synergyseg.figures.style import save_figure
from synergyseg.selection import pick_regime, selected_regime
from synergyseg.tables import training_percents
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
selected = selected_regime(snakemake.input.selection)
shares = training_percents(selected, snakemake.params.depletions, snakemake.params.test_fraction)
tests = {share: pd.read_csv(pick_regime(snakemake.input.tests, r)) for r, share in shares.items()}
title = f"{snakemake.wildcards.dataset}: depletion from {selected} (medians of per-image metrics)"
figure = depletion_figure(tests, title)
save_figure(figure, snakemake.output.png, snakemake.output.pdf, snakemake.params.dpi)
