"""Training curves of every model of one dataset, one panel per regime."""

from synergyseg.figures.curves import histories, training_figure
from synergyseg.figures.style import save_figure
from synergyseg.workflow import redirect_logging

redirect_logging(snakemake.log[0])
figure = training_figure(
    histories(snakemake.input.models),
    snakemake.params.regimes,
    f"{snakemake.wildcards.dataset}: loss per epoch",
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf, snakemake.params.dpi)
