"""Figure panels of the study (matplotlib, headless), one module per kind of figure.

Every figure is written as PNG (for the HTML report) and PDF (for papers) at a size that
depends only on its layout, so a re-render with new data gives the same canvas.
"""
