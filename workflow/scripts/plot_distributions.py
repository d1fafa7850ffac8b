"""Fig S1 QQ plots and Fig S2-S4 style distributions of the selected split of one dataset."""

import pandas as pd

from synergyseg.figures.distributions import distribution_figure, qq_figure
from synergyseg.figures.style import save_figure
from synergyseg.selection import pick_regime, selected_regime
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
regime = selected_regime(snakemake.input.selection)


def read(name):
    return pd.read_csv(pick_regime(getattr(snakemake.input, name), regime), dtype={"label": str})


per_image, name = read("per_image"), f"{snakemake.wildcards.dataset}, {regime}"
out, dpi = snakemake.output, snakemake.params.dpi
save_figure(
    qq_figure(per_image, read("normality"), f"{name}: QQ plots before and after Yeo–Johnson"),
    out.qq_png,
    out.qq_pdf,
    dpi,
)
save_figure(
    distribution_figure(per_image, read("tests"), f"{name}: per-image metrics (replicate medians)"),
    out.distributions_png,
    out.distributions_pdf,
    dpi,
)
