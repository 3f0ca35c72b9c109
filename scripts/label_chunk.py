"""Stage 2 (rule label_chunk): label one chunk of a phase's structures, resumably.

Run by the rule as `{mpi} python scripts/label_chunk.py ...` (a `script:` cannot run under
mpiexec); every rank computes, rank 0 writes."""
import argparse
import json

from ase.io import read
from mtpflow.settings import ReferenceSettings, build, chunk_indices

from mtplib.labeling import label_structures, mpi_world, run_mpi_safe


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--structures", required=True, help="stage-1 extxyz of one phase")
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="", help="launcher for command-driven codes")
    p.add_argument("--output", required=True)
    p.add_argument("--failed", required=True)
    args = p.parse_args()
    reference = build(ReferenceSettings, args.reference)
    comm = mpi_world()
    rank = comm.Get_rank() if comm is not None else 0
    frames = read(args.structures, index=":", parallel=False)
    wanted = set(chunk_indices(len(frames), reference.chunk_size, args.chunk))
    frames = [a for a in frames if int(a.info["index"]) in wanted]
    symbols = sorted({s for a in frames for s in a.get_chemical_symbols()})
    factory = reference.calculator_factory(args.mpi_prefix, symbols=symbols)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    log(f"chunk {args.chunk}: {len(frames)} structures, reference {reference.name}, "
        f"{comm.Get_size() if comm is not None else 1} MPI rank(s)")
    stats = label_structures(frames, factory, args.output, args.failed,
                             retries=reference.retries, comm=comm, log=log)
    log(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_mpi_safe(main))
