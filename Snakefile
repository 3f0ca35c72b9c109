# mtplib: Moment Tensor Potentials by active learning.
#
#   snakemake --cores all                                   # default demo (config/config.yaml)
#   snakemake --cores all --configfile config/examples/X.yaml   # another material
#
# Stages: 1 displace -> 2 label -> 3 fit -> 4 active learning -> 5 validation.
import json
import sys
import warnings
from pathlib import Path

from snakemake.utils import min_version

from scripts.mtpflow.settings import ConfigError, ConfigWarning, Settings, validate_config

min_version("9.0")


# A --configfile on the command line replaces the default config instead of
# being deep-merged into it (merging would add the demo's phases to yours).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The schema (defaults filled) and the cross-key checks, which read the files the config names;
# a mistake is one line naming the key and the config file, and no job runs; a likely mistake
# (a cell too small for a Gamma-only reference) is one WARNING line each, printed once.
CONFIG_FILES = ", ".join(str(f) for f in workflow.configfiles) or "config/config.yaml"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ConfigWarning)
    try:
        SETTINGS = Settings.from_config(validate_config(config), checked=True)
    except ConfigError as err:
        sys.exit(f"config error ({CONFIG_FILES}): {err}")
for w in caught:
    if not issubclass(w.category, ConfigWarning):
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    elif workflow.is_main_process:     # not again in every job's own Snakefile parse
        print(f"WARNING ({CONFIG_FILES}): {w.message}", file=sys.stderr)
if SETTINGS.active_learning.skipped and SETTINGS.active_learning.max_iterations:
    print(f"note: {SETTINGS.active_learning.skipped}", file=sys.stderr)


include: "rules/common.smk"
include: "rules/displace.smk"
include: "rules/label.smk"
include: "rules/fit.smk"
include: "rules/active.smk"
include: "rules/fidelity.smk"
include: "rules/validate.smk"
include: "rules/report.smk"
include: "rules/hull.smk"


# The report opens on the run's summary page once the workflow has produced it.
SUMMARY_PAGE = Path("results/report/summary.rst")
report: str(SUMMARY_PAGE.resolve()) if SUMMARY_PAGE.exists() else "report/workflow.rst"


rule all:
    input:
        rules.merge_labels.output.train,
        rules.merge_labels.output.summary,
        rules.isolated_energies.output.energies,
        rules.fit_gather.output,
        expand(rules.al_record.output, alroot=AL_ROOTS),
        rules.fidelity_record.output if STAGES else [],
        rules.final_gather.output,
        rules.validate_summary.output,
        rules.report_summary.output,
        hull_targets(),
    default_target: True


# The workflow's last console lines: the validation verdicts (written by validate_summary).
# Failing verdicts are listed and the run ends with exit 0, unless validation.fail_on_verdict.
onsuccess:
    verdicts = Path("results/validation/verdicts.txt")
    if verdicts.exists():
        print(f"\nValidation verdicts ({verdicts}):\n{verdicts.read_text()}", flush=True)
        failed = json.loads(Path("results/validation/summary.json").read_text()).get(
            "verdicts_failed", 0)
        if failed and SETTINGS.validation.fail_on_verdict:
            print(f"validation.fail_on_verdict is true and {failed} verdict(s) failed",
                  file=sys.stderr, flush=True)
            sys.exit(1)
