"""Plots (the ``plot`` extra). matplotlib is imported in one module only: ``_mpl``.

Each submodule draws for one part of the toolkit and imports pyplot from ``_mpl``.
"""
