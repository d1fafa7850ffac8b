"""synergyseg: ImageNet transfer (TII) vs. medical-only training (LMI) for binary segmentation.

The package holds every piece of logic the Snakemake workflow runs; the rules and
``workflow/scripts`` only parse the ``snakemake`` object and call into it.
"""

__version__ = "0.1.0"
