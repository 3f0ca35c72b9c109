"""mtplib: Moment Tensor Potentials (MLIP-2 compatible) with numba kernels and active learning."""
from .numba_cache import isolate_cache

isolate_cache()          # before any kernel module is imported: see numba_cache

from .memory import keep_freed_memory  # noqa: E402
from .potential import MTPInputError, MTPotential, load  # noqa: E402

keep_freed_memory()

__version__ = "0.1.0"
__all__ = ["MTPotential", "MTPCalculator", "MTPInputError", "load", "__version__"]


def __getattr__(name):
    # the calculator imports ASE's calculator machinery: only when asked for (PEP 562), so
    # that `mtplib evaluate` on .cfg/extxyz starts without it
    if name == "MTPCalculator":
        from .calculator import MTPCalculator
        return MTPCalculator
    raise AttributeError(f"module 'mtplib' has no attribute {name!r}")
