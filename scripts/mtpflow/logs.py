"""Logging of stage scripts: every message goes to the rule's log file, and to the terminal
unless the job is a quiet one (MD jobs log many lines; their file is enough).

Python warnings raised inside a job go to its log file, not the console; the "closer than
min_dist" warnings of the potential (one per evaluated structure) are counted and summed up
in ONE line (how many structures, the smallest distance, what to do)."""
import re
import warnings
from contextlib import contextmanager

MIN_DIST = re.compile(r"atoms ([0-9.]+) Å apart, closer than min_dist = ([0-9.]+) Å")
# a run's summary (mtplib.potential.CloseContacts): count, min_dist, shortest distance
MIN_DIST_RUN = re.compile(r"(\d+) structure evaluation\(s\) had atoms closer than "
                          r"min_dist = ([0-9.]+) Å \(shortest ([0-9.]+) Å")


def warning_summary(messages):
    """The lines that sum up a job's warning messages: one for the min_dist ones (count,
    smallest distance, advice), one per other distinct message."""
    distances, count, min_dist, others = [], 0, None, {}
    for msg in messages:
        match, run = MIN_DIST.search(msg), MIN_DIST_RUN.search(msg)
        if match:
            distances.append(float(match.group(1)))
            min_dist, count = float(match.group(2)), count + 1
        elif run:
            distances.append(float(run.group(3)))
            min_dist, count = float(run.group(2)), count + int(run.group(1))
        else:
            others[msg] = others.get(msg, 0) + 1
    lines = []
    if distances:
        lines.append(
            f"{count} structure evaluation(s) had atoms closer than mtp.min_dist = "
            f"{min_dist:g} Å (smallest {min(distances):.3f} Å), where the potential is not "
            f"trained: harmless when rare and just below min_dist; otherwise lower mtp.min_dist "
            f"below the data's shortest distance (`mtplib mindist`), or keep the repulsive "
            f"core mtp.radial_basis_type = RBChebyshev_repuls (the default)")
    for msg, n in others.items():
        lines.append(f"python warning ({n}x): {msg}")
    return lines


def every_nth(word, n):
    """A `progress` predicate of :func:`tee_log`: messages whose first words are
    '<word> <k>' ('iter 40', or 'scenario: step 500') with k a multiple of n."""
    def predicate(msg):
        words = msg.replace(":", " ").split()
        for a, b in zip(words, words[1:]):
            if a == word:
                return b.isdigit() and int(b) % max(1, n) == 0
        return False
    return predicate


@contextmanager
def tee_log(path, terminal=True, progress=None):
    """A `log(msg)` function that appends `msg` to `path` and, if `terminal`, prints it; in a
    quiet job (terminal=False), the messages for which `progress(msg)` is true are printed as
    'progress: <log>: msg' lines (a long fit or MD is never silent on the console).
    Warnings go to `path`, summed up at the end (the min_dist summary also to the terminal)."""
    with open(path, "w") as log_file:

        def log(msg):
            if terminal:
                print(msg, flush=True)
            elif progress is not None and progress(msg):
                print(f"progress: {path}: {msg}", flush=True)
            print(msg, file=log_file, flush=True)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield log
            finally:
                messages = [str(w.message) for w in caught]
                for line in warning_summary(messages):
                    print(line, file=log_file, flush=True)
                    if line[0].isdigit():      # the min_dist summary, named by the job's log
                        print(f"{path}: {line}", flush=True)
