"""Pure numba kernels: arrays in, arrays out. Importing the package isolates numba's cache
(see `mtplib.numba_cache`) before the first kernel is defined."""
from ..numba_cache import isolate_cache

isolate_cache()
