"""mtplib: Moment Tensor Potentials (MLIP-2 compatible) with numba kernels and active learning.

The top-level names load on first use (PEP 562), so that `import mtplib.labeling` or the
command line's start-up does not pay for the kernels it does not need. The numba cache is
isolated (`numba_cache`) by the kernel modules themselves, before their first kernel.
"""
import importlib

__version__ = "0.1.0"
__all__ = ["MTPotential", "MTPCalculator", "MTPInputError", "load", "__version__"]

_LAZY = {"MTPotential": "potential", "MTPInputError": "potential", "load": "potential",
         "MTPCalculator": "calculator"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'mtplib' has no attribute {name!r}")
