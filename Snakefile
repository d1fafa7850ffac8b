"""synergyseg: does ImageNet transfer (TII) beat medical-only training (LMI) here, and do they combine?

Stages follow the study's Methods: raw data → slices → 80:20 splits and depletion regimes →
one VGG16-UNet per dataset × regime × init × replicate → test-set predictions →
per-image metrics → statistics, split selection (which decides the depletion regimes) → tables;
the selected split's test images → Grad-CAM → figure panels → `snakemake --report`.
Run `snakemake --cores all` (demo) or `--configfile config/config.yaml` (the full protocol).
"""

from snakemake.utils import min_version

min_version("9.0")


# The demo is the default. A --configfile replaces it rather than being merged into it, so the
# full protocol never inherits demo settings (phantom sizes, grouped kidney splits ...).
if not workflow.overwrite_configfiles:

    configfile: "config/demo.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"  # validates the config against config/schema.yaml


wildcard_constraints:
    dataset="|".join(DATASETS),
    index=r"\d+",
    percent=r"\d+",
    regime="|".join(REGIMES),
    init="tii|lmi",
    rep=r"\d+",


include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/explain.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


# Only the downloads (datasets, labels, ImageNet weights), e.g. on a login node with internet
# before the compute nodes run everything else: `snakemake --cores 4 fetch_data`.
rule fetch_data:
    input:
        fetched_inputs(),
    localrule: True
