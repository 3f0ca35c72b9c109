"""mtplib: Moment Tensor Potentials (MLIP-2 compatible) with numba kernels and active learning."""
from .memory import keep_freed_memory
from .potential import MTPInputError, MTPotential, load
from .calculator import MTPCalculator

keep_freed_memory()

__version__ = "0.1.0"
__all__ = ["MTPotential", "MTPCalculator", "MTPInputError", "load", "__version__"]
