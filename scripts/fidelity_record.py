"""After the last fidelity stage (rule fidelity_record): every stage's potentials on the last
stage's test labels, and the reference calls of each stage."""
from mtpflow.fidelity import record
from mtpflow.logs import tee_log

sm = snakemake  # noqa: F821
stages = sm.params.stages
with tee_log(sm.log[0]) as log:
    record(stages, {s: {"start": sm.input[f"start_{s}"], "end": sm.input[f"end_{s}"]}
                    for s in stages},
           sm.input.test, sm.input.labels, {s: sm.input[f"relabel_{s}"] for s in stages[1:]},
           {s: list(sm.input[f"iterations_{s}"]) if f"iterations_{s}" in sm.input.keys() else []  # noqa: SIM118
            for s in stages}, sm.params.elements, sm.output.json, sm.output.csv,
           sparsify_summaries={s: sm.input[f"sparsify_{s}"] for s in stages
                               if f"sparsify_{s}" in sm.input.keys()},  # noqa: SIM118
           log=log)
