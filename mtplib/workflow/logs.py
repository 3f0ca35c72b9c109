"""Logging of stage scripts: every message goes to the terminal and to the rule's log file."""
from contextlib import contextmanager


@contextmanager
def tee_log(path):
    """A `log(msg)` function that prints `msg` and appends it to `path`."""
    with open(path, "w") as log_file:

        def log(msg):
            print(msg, flush=True)
            print(msg, file=log_file, flush=True)

        yield log
