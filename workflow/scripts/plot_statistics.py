"""The statistics panels of one dataset (rule plot_statistics): Fig S1 QQ plots, Fig S2-S4
distributions, training curves and the depletion plot."""

import pandas as pd

from synergyseg.figures.curves import depletion_figure, histories, training_figure
from synergyseg.figures.distributions import distribution_figure, qq_figure
from synergyseg.figures.style import save_panel
from synergyseg.label_tables import training_percents
from synergyseg.selection import pick_regime, selected_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
inputs, out, params = snakemake.input, snakemake.output, snakemake.params
dataset = snakemake.wildcards.dataset
regime = selected_regime(inputs.selection)


def save(figure, name):
    save_panel(figure, out, name, params.dpi)


def read(name, chosen=regime):
    return pd.read_csv(pick_regime(inputs[name], chosen), dtype={"label": str})


per_image, name = read("per_image"), f"{dataset}, {regime}"
save(
    qq_figure(per_image, read("normality"), f"{name}: QQ plots before and after Yeo–Johnson"), "qq"
)
save(
    distribution_figure(
        per_image,
        read("tests"),
        f"{name}: per-image metrics (replicate medians)",
        params.max_labels,
    ),
    "distributions",
)
save(
    training_figure(histories(inputs.histories), params.regimes, f"{dataset}: loss per epoch"),
    "training",
)
if params.depletions:
    shares = training_percents(regime, params.depletions, params.test_fraction)
    tests = {share: read("tests", r) for r, share in shares.items()}
    title = f"{dataset}: depletion from {regime} (medians of per-image metrics)"
    save(depletion_figure(tests, title), "depletion")
