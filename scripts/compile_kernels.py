"""Before stage 3 (rule compile_kernels): fill the numba cache once, alongside stages 1-2."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.logs import tee_log  # noqa: E402
from mtplib.workflow.warmup import compile_kernels  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    compile_kernels(sm.params.elements, sm.params.mtp, sm.output.record, log=log)
