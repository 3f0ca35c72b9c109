"""Stages 3 and 4 (rules fit_seed, final_seed): fit one seed of the seed scan, errors on the
held-out test set.

Run as `[{mpi} -n K] python scripts/fit_seed.py ...` so that a fit can use MPI ranks."""
import argparse
import sys
import time

from mtpflow.active import isolated_energies
from mtpflow.settings import FitSettings, MTPSettings, build

from mtplib.labeling import read_frames
from mtplib.training import fit_seed

PROGRESS_LINES = 5    # console lines per fit (every max_iter / 5 iterations)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="labelled training configurations")
    p.add_argument("--test", help="the held-out test configurations (never trained on); "
                   "without it, --train is split by fit.test_fraction")
    p.add_argument("--isolated", help="isolated.json of stage 2")
    p.add_argument("--elements", required=True, help="comma-separated symbols")
    p.add_argument("--mtp", required=True, help="JSON of the config section 'mtp'")
    p.add_argument("--fit", required=True, help="JSON of the config section 'fit'")
    p.add_argument("--max-iter", type=int, help="override fit.max_iter (the final fit)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--potential", required=True, help="output .mtp (errors: the .json beside)")
    args = p.parse_args()
    fit_settings, mtp = build(FitSettings, args.fit), build(MTPSettings, args.mtp)
    elements = args.elements.split(",")
    if args.test:
        train, test = read_frames(args.train), read_frames(args.test)
    else:
        train, test = fit_settings.split(read_frames(args.train))
    print(f"seed {args.seed}: {len(train)} training and {len(test)} test configurations",
          flush=True)
    kwargs = fit_settings.fit_kwargs(max_iter=args.max_iter)
    every = max(1, kwargs["max_iter"] // PROGRESS_LINES)
    start = time.monotonic()

    def log(msg):
        """Every message to stdout (the job log); every `every`-th iteration also as a
        'progress:' line, which the rule shows on the console."""
        print(msg, flush=True)
        words = msg.split()
        if len(words) > 1 and words[0] == "iter" and words[1].isdigit() \
                and int(words[1]) % every == 0:
            print(f"progress: {args.potential}: iteration {words[1]} of at most "
                  f"{kwargs['max_iter']}, {' '.join(words[2:])}, "
                  f"{time.monotonic() - start:.0f} s", flush=True)

    try:
        fit_seed(train, mtp.initial_potential(elements), args.seed, args.potential,
                 test_images=test, isolated_energies=isolated_energies(args.isolated),
                 log=log, **kwargs)
    except ValueError as exc:
        print(f"fit seed {args.seed}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
