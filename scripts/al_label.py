"""Stage 4 (rule al_label): label the configurations selected by active learning with the
stage-2 code (retries, failures recorded, resumable, MPI).

Run as `{mpi} python scripts/al_label.py ...`; every rank computes, rank 0 writes."""
import argparse
import json

from mtpflow.settings import ReferenceSettings, build

from mtplib.labeling import label_structures, mpi_world, read_frames, run_mpi_safe


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--selected", required=True)
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="")
    p.add_argument("--output", required=True)
    p.add_argument("--failed", required=True)
    args = p.parse_args()
    reference = build(ReferenceSettings, args.reference)
    comm = mpi_world()
    rank = comm.Get_rank() if comm is not None else 0
    frames = read_frames(args.selected)
    factory = reference.calculator_factory(args.mpi_prefix)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    log(f"{len(frames)} selected configuration(s), reference {reference.name}")
    stats = label_structures(frames, factory, args.output, args.failed,
                             retries=reference.retries, comm=comm, log=log)
    log(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_mpi_safe(main))
