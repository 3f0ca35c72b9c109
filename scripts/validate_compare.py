"""Stage 5 (rule validate_compare): RDF/ADF of the MTP and reference trajectories, compared."""
from mtpflow.logs import tee_log
from mtpflow.validation import compare

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    result = compare(sm.input.mtp, sm.input.reference, sm.params.rdf, sm.params.adf,
                     sm.params.elements, sm.output.similarity, sm.output.rdf, sm.output.adf)
    if "error" in result:
        log(f"{sm.wildcards.vscenario}: not compared, {result['error']}")
    else:
        log(f"{sm.wildcards.vscenario}: RDF integrated |difference| "
            f"{result['rdf_integrated_absolute_difference']:.4f} Å; ADF cutoffs "
            f"{result['adf_cutoffs']}")
