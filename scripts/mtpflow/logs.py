"""Logging of stage scripts: every message goes to the rule's log file, and to the terminal
unless the job is a quiet one (MD jobs log many lines; their file is enough)."""
from contextlib import contextmanager


@contextmanager
def tee_log(path, terminal=True):
    """A `log(msg)` function that appends `msg` to `path` and, if `terminal`, prints it."""
    with open(path, "w") as log_file:

        def log(msg):
            if terminal:
                print(msg, flush=True)
            print(msg, file=log_file, flush=True)

        yield log
