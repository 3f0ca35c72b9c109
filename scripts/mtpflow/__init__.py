"""Workflow glue (not part of the installed library): typed settings from the validated config,
and the per-stage functions that turn paths and settings into mtplib calls and records.

Scripts run by Snakemake find this package beside them (Snakemake puts a script's folder on
sys.path; `python scripts/<stage>.py` does the same); the Snakefile imports
``scripts.mtpflow.settings`` from the workflow folder."""
