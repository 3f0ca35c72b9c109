"""Stage 2 (rule isolated_energies): isolated-atom energies with the reference calculator.

Run as `{mpi} python scripts/label_isolated.py ...`; rank 0 writes."""
import argparse
import json
from pathlib import Path

from mtpflow.settings import ReferenceSettings, build

from mtplib.labeling import isolated_energies, mpi_world, run_mpi_safe


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", required=True, help="comma-separated symbols")
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="")
    p.add_argument("--output", required=True)
    args = p.parse_args()
    ref = build(ReferenceSettings, args.reference)
    comm = mpi_world()
    rank0 = comm is None or comm.Get_rank() == 0
    result = isolated_energies(args.elements.split(","), ref.name, ref.kwargs, ref.isolated_box,
                               ref.isolated_spin, args.mpi_prefix, retries=ref.retries,
                               timeout=ref.timeout, blas=ref.blas,
                               log=(lambda m: print(m, flush=True)) if rank0 else (lambda m: None))
    if comm is None or comm.Get_rank() == 0:
        text = json.dumps(result, indent=2)
        print(text, flush=True)
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_mpi_safe(main))
