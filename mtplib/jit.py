"""The decorator of mtplib's numba kernels, and the kernels compiled ahead of time for the
command line.

`njit` is numba's, unless the process asked for the compiled module first
(`use_compiled_module`, as `mtplib evaluate` does before it imports a kernel module). Then
each kernel is a `Kernel` stand-in that calls its export in the extension module which
`mtplib compile` built ahead of time (numba.pycc) for this version of the kernel sources,
this Python and this CPU, and the process never imports numba, whose import and cache load
cost more than a small command's whole work (benchmarks/RESULTS.md, bench_cli). A call
that no export takes (other array types, a kernel the command did not need when the module
was built) compiles the kernels with numba, as without the module (`_materialize`).

The compiled module runs on one thread: its exports hold the GIL (`get_num_threads` is 1
while it runs the kernels).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import time
import types
import zlib
from pathlib import Path

import numpy as np

MODULE_NAME = "mtplib_kernels"
KERNEL_MODULES = ("mtplib.kernels.mtp", "mtplib.kernels.training", "mtplib.neighbors")
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

_kernels = []            # every Kernel defined so far, in definition order
_compiled = None         # {kernel key: [(arg specs, function)]} once loaded; {} if none
_wanted = False          # use_compiled_module was called
_recording = None        # set of Kernel keys called from Python (build_compiled_module)


# ---- the decorator ----------------------------------------------------------------------
def njit(*args, **options):
    """numba.njit, or a `Kernel` stand-in in a process that wants the compiled module."""
    if args and callable(args[0]):
        return njit(**options)(args[0])

    def decorate(py_func):
        if not _wanted:
            import numba
            return numba.njit(**options)(py_func)
        kernel = Kernel(py_func, options)
        _kernels.append(kernel)
        return kernel
    return decorate


class Kernel:
    """A kernel in a process that wants the compiled module: its export when the arguments
    match one (checked here: a pycc export reads any array as the type it was built for),
    else numba's dispatcher."""

    def __init__(self, py_func, options):
        self.py_func = py_func
        self.options = options
        self.key = f"{py_func.__module__}:{py_func.__qualname__}"
        self.dispatcher = None
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__

    def __call__(self, *args):
        for specs, function in _exports().get(self.key, ()):
            if _matches(specs, args):
                return function(*args)
        if _recording is not None:
            _recording.add(self.key)
        if self.dispatcher is None:
            _materialize()
        return self.dispatcher(*args)

    def __getattr__(self, name):          # numba's attributes (py_func above, stats, ...)
        if name.startswith("__") or name == "dispatcher":
            raise AttributeError(name)
        if self.dispatcher is None:
            _materialize()
        return getattr(self.dispatcher, name)


def _materialize():
    """Make numba dispatchers of every Kernel. Each kernel's function is rebuilt over a copy
    of its module's globals in which the other kernels are dispatchers, so numba types their
    calls; the module itself keeps the stand-ins (they pass calls on)."""
    import numba
    from .numba_cache import isolate_cache
    isolate_cache()
    fresh = [kernel for kernel in _kernels if kernel.dispatcher is None]
    spaces = {kernel.py_func.__module__: None for kernel in fresh}
    spaces = {name: dict(vars(sys.modules[name])) for name in spaces}
    for kernel in fresh:
        f = kernel.py_func
        clone = types.FunctionType(f.__code__, spaces[f.__module__], f.__name__,
                                   f.__defaults__, f.__closure__)
        clone.__qualname__, clone.__doc__ = f.__qualname__, f.__doc__
        clone.__kwdefaults__ = f.__kwdefaults__
        kernel.dispatcher = numba.njit(**kernel.options)(clone)
    for space in spaces.values():
        for name, value in space.items():
            if isinstance(value, Kernel):
                space[name] = value.dispatcher


def get_num_threads():
    """numba.get_num_threads(); 1 while the compiled module runs the kernels."""
    if _kernels and _exports():
        return 1
    import numba
    return numba.get_num_threads()


def available_threads():
    """The threads numba would run on (NUMBA_NUM_THREADS, else the CPUs this process may
    use), without importing numba."""
    value = os.environ.get("NUMBA_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---- argument checks ----------------------------------------------------------------------
def _spec(numba_type):
    """A JSON-able description of a numba argument type, or None for one not checked here."""
    from numba.core import types as nt
    if isinstance(numba_type, nt.Array):
        if numba_type.layout not in "CA" or not numba_type.aligned:
            return None
        return ["array", np.dtype(str(numba_type.dtype)).str, numba_type.ndim,
                numba_type.layout, not numba_type.mutable]
    if isinstance(numba_type, nt.BaseTuple):
        inner = [_spec(t) for t in numba_type.types]
        return None if any(s is None for s in inner) else ["tuple", inner]
    if numba_type == nt.boolean:
        return ["bool"]
    if numba_type == nt.int64:
        return ["int"]
    if numba_type == nt.float64:
        return ["float"]
    return None


def _matches(specs, args):
    """Whether numba would type `args` as the argument types described by `specs`."""
    return len(specs) == len(args) and all(map(_match, specs, args))


def _match(spec, value):
    kind = spec[0]
    if kind == "array":
        return (type(value) is np.ndarray and value.dtype.str == spec[1]
                and value.ndim == spec[2] and value.flags.aligned
                and (spec[3] == "A" or value.flags.c_contiguous)
                and value.flags.writeable != spec[4])
    if kind == "float":
        return type(value) is float or type(value) is np.float64
    if kind == "int":
        return type(value) is int or type(value) is np.int64
    if kind == "bool":
        return type(value) is bool or type(value) is np.bool_
    return (type(value) is tuple and len(value) == len(spec[1])
            and all(map(_match, spec[1], value)))


# ---- the compiled module ------------------------------------------------------------------
def use_compiled_module():
    """Ask for the compiled kernels: call before any kernel module is imported (a module
    imported earlier keeps numba's kernels). The module loads at the first kernel call.
    MTPLIB_COMPILED=0 in the environment keeps numba's kernels, as does a process that has
    imported a kernel module already (its kernels are numba's)."""
    global _wanted
    _wanted = _wanted or (os.environ.get("MTPLIB_COMPILED", "1") != "0"
                          and not _kernel_modules_imported())


def _kernel_modules_imported():
    """Whether a kernel module is imported already (then with numba's kernels)."""
    return any(name in sys.modules for name in KERNEL_MODULES)


def stop_using_compiled_module():
    """From now on numba's kernels (on numba's threads), e.g. for work large enough that
    threads gain more than numba's start-up costs."""
    global _compiled
    _compiled = {}


def compiled_module_dir():
    """Where `mtplib compile` writes the module: beside numba's cache of these sources."""
    from .numba_cache import isolate_cache
    return Path(isolate_cache()) / "compiled"


def _host():
    """The CPU the module is built for (it uses the host's instruction set): /proc/cpuinfo's
    model name and flags, or the platform's names elsewhere."""
    import platform
    text = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "cpu model", "Processor", "Features")):
                    text += line
                elif not line.strip() and text:
                    break
    except OSError:
        text = platform.processor()
    return f"{platform.machine()}:{zlib.crc32(text.encode()):08x}"


def _exports():
    """{kernel key: [(specs, function)]} of the compiled module, loaded once; {} when
    there is none for these sources, this Python and this CPU."""
    global _compiled
    if _compiled is None:
        _compiled = {}
        if _wanted:
            _compiled = _load(compiled_module_dir())
    return _compiled


def _load(folder):
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    path = folder / (MODULE_NAME + _SUFFIX)
    if manifest.get("host") != _host() or manifest.get("suffix") != _SUFFIX or not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return {}
    exports = {}
    for name, entry in manifest["exports"].items():
        exports.setdefault(entry["kernel"], []).append((entry["args"], getattr(module, name)))
    return exports


def record_calls():
    """Start recording which kernels Python calls (for `build_compiled_module`)."""
    global _recording, _compiled
    if _kernel_modules_imported():
        raise RuntimeError("record_calls() must come before any kernel module is imported")
    use_compiled_module()
    _recording, _compiled = set(), {}      # (not the module of an earlier build)


def build_compiled_module(folder=None, log=print):
    """Compile the kernels that Python called since `record_calls`, with every argument
    type they were called with, into the extension module of `compiled_module_dir()`.
    Returns its path."""
    global _compiled
    import warnings
    with warnings.catch_warnings():        # pycc is "pending deprecation" since numba 0.57
        warnings.simplefilter("ignore")
        try:
            from numba.pycc import CC
        except ImportError:
            raise RuntimeError("this numba has no pycc (numba's ahead-of-time compiler): "
                               "`mtplib evaluate` runs on numba's kernels") from None
    if _recording is None:
        raise RuntimeError("build_compiled_module needs record_calls() and a run first")
    folder = Path(folder or compiled_module_dir())
    folder.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    try:
        cc = CC(MODULE_NAME)
    except Exception as exc:               # no C compiler
        raise RuntimeError(f"the ahead-of-time build needs a C compiler ({_first_line(exc)}): "
                           "`mtplib evaluate` runs on numba's kernels") from None
    cc.output_dir = str(folder / "build")
    cc.target_cpu = "host"
    cc.verbose = False
    manifest = {"host": _host(), "suffix": _SUFFIX, "exports": {}}
    kernels = {kernel.key: kernel for kernel in _kernels}
    for key in sorted(_recording):
        kernel = kernels[key]
        for n, signature in enumerate(kernel.dispatcher.nopython_signatures):
            specs = [_spec(t) for t in signature.args]
            if any(s is None for s in specs):
                continue
            name = f"{key.replace('.', '_').replace(':', '__')}__{n}"
            arguments = ", ".join(f"a{i}" for i in range(len(specs)))
            space = {"kernel": kernel.dispatcher}
            exec(f"def {name}({arguments}):\n    return kernel({arguments})\n", space)
            cc.export(name, signature)(space[name])
            manifest["exports"][name] = {"kernel": key, "args": specs}
    log(f"compiling {len(manifest['exports'])} kernel entry points ahead of time "
        f"({len(_recording)} kernels) into {folder}")
    try:
        cc.compile()
    except Exception as exc:               # no C compiler or linker, a failed build
        raise RuntimeError(f"the ahead-of-time build failed ({_first_line(exc)}); it needs a C compiler "
                           "and linker: `mtplib evaluate` runs on numba's kernels") from None
    # no manifest while the module is replaced: a build cut short leaves nothing to load
    (folder / "manifest.json").unlink(missing_ok=True)
    os.replace(Path(cc.output_dir) / (MODULE_NAME + _SUFFIX), folder / (MODULE_NAME + _SUFFIX))
    shutil.rmtree(cc.output_dir, ignore_errors=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"compiled module written in {time.perf_counter() - wall:.1f} s")
    _compiled = None
    return folder / (MODULE_NAME + _SUFFIX)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".:") if text else type(exc).__name__
