"""Stages 2 and 4 (rules label_chunk, al_label_part): label structures with the reference code,
resumably, with retries and failures recorded (mtplib.labeling). With --retry-failed (rule
retry_failed), relabel only the failures of a finished chunk, in place.

Run by the rules as `{mpi} python scripts/label.py ...` (a `script:` cannot run under
mpiexec); every rank computes, rank 0 writes. With --chunk, only that chunk of the file; with
--part k --parts n, only the k-th of n equal consecutive parts (an iteration's selection,
whose size is known only at run time)."""
import argparse
import json

from mtpflow.settings import ReferenceSettings, build, chunk_indices

from mtplib.labeling import (label_structures, mpi_world, read_frames, retry_failures,
                             run_mpi_safe)
from mtplib.labeling.registry import blas_note


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--structures", required=True, help="extxyz of the structures")
    p.add_argument("--chunk", type=int, help="label only this chunk (reference.chunk_size each)")
    p.add_argument("--part", type=int, help="label only this part (of --parts equal parts)")
    p.add_argument("--parts", type=int, default=1, help="the number of parts (with --part)")
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="", help="launcher for command-driven codes")
    p.add_argument("--output", required=True)
    p.add_argument("--failed", required=True)
    p.add_argument("--retry-failed", action="store_true",
                   help="relabel the failures of the finished chunk (--output, --failed) in place")
    args = p.parse_args()
    if args.part is not None and not 0 <= args.part < args.parts:
        p.error(f"--part {args.part} is not one of the {args.parts} parts (0 to {args.parts - 1})")
    reference = build(ReferenceSettings, args.reference)
    comm = mpi_world()
    rank = comm.Get_rank() if comm is not None else 0
    frames = read_frames(args.structures)
    what = f"{len(frames)} structure(s)"
    if args.chunk is not None:
        wanted = set(chunk_indices(len(frames), reference.chunk_size, args.chunk))
        frames = [a for a in frames if int(a.info["index"]) in wanted]
        what = f"chunk {args.chunk}: {len(frames)} structures"
    elif args.part is not None:
        n = len(frames)
        frames = frames[args.part * n // args.parts:(args.part + 1) * n // args.parts]
        what = f"part {args.part + 1} of {args.parts}: {len(frames)} of {n} structures"
    symbols = sorted({s for a in frames for s in a.get_chemical_symbols()})
    factory = reference.calculator_factory(args.mpi_prefix, symbols=symbols)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    blas = blas_note(reference.name)
    log(f"{what}, reference {reference.name}, "
        f"{comm.Get_size() if comm is not None else 1} MPI rank(s)" + (f", {blas}" if blas else ""))
    if args.retry_failed:
        stats = retry_failures(args.output, args.failed, factory, retries=reference.retries,
                               comm=comm, log=log, timeout=reference.timeout)
    else:
        stats = label_structures(frames, factory, args.output, args.failed,
                                 retries=reference.retries, comm=comm, log=log,
                                 timeout=reference.timeout)
    log(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_mpi_safe(main))
