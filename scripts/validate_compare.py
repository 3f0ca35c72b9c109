"""Stage 5 (rule validate_compare): RDF/ADF of the MTP and reference trajectories, compared."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.validation import compare  # noqa: E402

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log_file:
    result = compare(sm.input.mtp, sm.input.reference, sm.params.rdf, sm.params.adf,
                     sm.params.elements, sm.output.similarity, sm.output.rdf, sm.output.adf)
    print(f"{sm.wildcards.vscenario}: RDF integrated |difference| "
          f"{result['rdf_integrated_absolute_difference']:.4f} Å; ADF cutoffs "
          f"{result['adf_cutoffs']}", file=log_file)
