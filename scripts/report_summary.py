"""After stage 5 (rule report_summary): results/report/summary.rst, the page the report
(`snakemake --report report.html`) opens on."""
from pathlib import Path

from mtpflow.logs import tee_log
from mtpflow.report import summary_rst

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    text = summary_rst(sm.config, sm.input.potential, sm.input.errors, list(sm.input.iterations),
                       sm.input.labels, sm.input.validation)
    Path(sm.output.page).write_text(text)
    log(f"{sm.output.page}: the report's landing page ({len(text.splitlines())} lines)")
