"""Stage 5 (rule validate_compare): RDF/ADF and coordination numbers of the MTP trajectory,
compared with the reference trajectory's when the scenario has a reference MD."""
from mtpflow.logs import tee_log
from mtpflow.validation import compare, comparison_line

sm = snakemake  # noqa: F821
reference = getattr(sm.input, "reference", None)
records = {"mtp": sm.input.mtp_record}
if reference:
    records["reference"] = sm.input.reference_record
with tee_log(sm.log[0], terminal=False) as log:
    result = compare(sm.input.mtp, reference, sm.params.rdf, sm.params.adf, sm.params.elements,
                     sm.output.similarity, sm.output.rdf, sm.output.adf, records=records,
                     coordination_cutoffs=sm.params.coordination_cutoffs)
    log(comparison_line(sm.wildcards.vscenario, result) or
        f"{sm.wildcards.vscenario}: no reference MD (reference.enabled: false); "
        f"coordination {result['structure']['mtp']['coordination']}")
