"""Hull target (rule hull_reference): the direct route, every candidate relaxed with the
reference, and the reference calls it took."""
from ase.io import write
from mtpflow.logs import tee_log
from mtpflow.settings import ReferenceSettings, build

from mtplib.active import relax_pool_with_reference
from mtplib.active.relax import relaxation_frames
from mtplib.labeling import read_frames

sm = snakemake  # noqa: F821
hull = sm.params.hull
reference = build(ReferenceSettings, sm.params.reference)
with tee_log(sm.log[0]) as log:
    out = relax_pool_with_reference(read_frames(sm.input.pool), reference.calculator_factory(),
                                    optimizer=hull["optimizer"], fmax=hull["fmax"],
                                    steps=hull["steps"])
    write(sm.output.relaxed, relaxation_frames(out), format="extxyz")
    log(f"reference relaxations: {len(out)} structures, {sum(r.calls for r in out)} reference "
        f"calls, {sum(r.status == 'converged' for r in out)} converged")
