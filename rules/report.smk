# The report's landing page (snakemake --report report.html): a summary of the run rendered
# from the results into reStructuredText; the Snakefile's `report:` points at it once it exists.


rule report_summary:
    input:
        potential="results/final/potential.mtp",
        errors="results/final/errors.json",
        iterations=al_summaries,
        labels="results/labels/summary.json",
        validation="results/validation/summary.json",
    output:
        page="results/report/summary.rst",
    log:
        "logs/report/summary.log",
    conda:
        "../envs/mtp.yaml"
    script:
        "../scripts/report_summary.py"
