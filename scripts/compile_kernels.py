"""Before stage 3 (rule compile_kernels): fill the numba cache once, alongside stages 1-2."""
from mtpflow.logs import tee_log
from mtpflow.settings import MTPSettings, build

from mtplib.warmup import compile_kernels

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    pot = build(MTPSettings, sm.params.mtp).initial_potential(sm.params.elements)
    log("compiling the numba kernels: a few CPU-minutes on first use, then loaded from the "
        "cache by every job ...")
    compile_kernels(pot, sm.output.record, log=log)
