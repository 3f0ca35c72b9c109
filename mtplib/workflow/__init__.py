"""Stage logic of the Snakemake workflow (stages 1-2: displacement and labelling).

Each module is a plain library: it takes Python objects and paths, and knows
nothing about Snakemake. The thin scripts under ``scripts/`` and the rules under
``rules/`` only wire configuration values into these functions.
"""
