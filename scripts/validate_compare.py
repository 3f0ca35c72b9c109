"""Stage 5 (rule validate_compare): RDF/ADF and coordination numbers of the MTP trajectory,
compared with the reference trajectory's when the scenario has a reference MD."""
from mtpflow.logs import tee_log
from mtpflow.validation import compare

sm = snakemake  # noqa: F821
reference = getattr(sm.input, "reference", None)
records = {"mtp": sm.input.mtp_record}
if reference:
    records["reference"] = sm.input.reference_record
with tee_log(sm.log[0], terminal=False) as log:
    result = compare(sm.input.mtp, reference, sm.params.rdf, sm.params.adf, sm.params.elements,
                     sm.output.similarity, sm.output.rdf, sm.output.adf, records=records,
                     coordination_cutoffs=sm.params.coordination_cutoffs)
    if "error" in result:
        log(f"{sm.wildcards.vscenario}: not compared, {result['error']}")
    elif "rdf" in result:
        log(f"{sm.wildcards.vscenario}: RDF integrated |difference| "
            f"{result['rdf_integrated_absolute_difference']:.4f} Å; ADF cutoffs "
            f"{result['adf_cutoffs']}")
    else:
        log(f"{sm.wildcards.vscenario}: no reference MD (reference.enabled: false); "
            f"coordination {result['structure']['mtp']['coordination']}")
