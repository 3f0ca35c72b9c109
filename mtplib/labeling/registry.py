"""The reference codes that label structures: one registry entry per code.

An entry says everything the labelling, the isolated-atom energies and the workflow need to
know about a code: where its ASE calculator lives, the pip extra and the conda env that
provide it, how MPI reaches it (Python itself under ``mpiexec``, or a launcher put in front
of the code's own command), whether it needs a private scratch folder, how an isolated atom
is computed (periodic box, Γ point only, spin), whether it samples the Brillouin zone at the
Γ point only (then small periodic cells are not converged), and a hook that adapts the keyword
arguments (e.g. espresso's profile). Adding a code is one :func:`register` call (plus its name in
``config/schema.yaml``); any other ``module:Class`` name is an ASE calculator used as it is.
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class ReferenceCode:
    """How to build and run one reference code."""

    name: str
    module: str
    class_name: str
    extra: str | None = None            # pip extra: pip install 'mtplib[extra]'
    conda_env: str = "mtp"              # envs/<conda_env>.yaml has the code
    command_driven: bool = False        # MPI by prefixing the code's command (files in, files out)
    scratch_directory: bool = False     # a private folder per calculator (its input/output files)
    isolated_periodic: bool = False     # an isolated atom sits in a periodic box
    isolated_gamma_only: Callable[[dict], None] | None = None   # kwargs -> Γ-only kwargs, in place
    isolated_spin: Callable[[object, dict, float], str] | None = None  # (atoms, kwargs, moment) -> mode
    prepare: Callable[[dict, str], dict] | None = None   # (kwargs, mpi_prefix) -> kwargs
    preflight: Callable[[list, dict], None] | None = None  # (symbols, kwargs): fail before labelling
    elements: Callable[[], set] | None = None   # the elements the code can do (None: any)
    # Brillouin zone sampled at Γ only: True, or kwargs -> bool (k-points from the kwargs)
    gamma_only: bool | Callable[[dict], bool] = False
    # its Python package may ship netlib's reference BLAS/LAPACK (tblite's PyPI wheel does):
    # then reference.blas puts an optimized one in front (use_optimized_blas)
    may_bundle_reference_blas: bool = False

    def samples_gamma_only(self, kwargs: dict | None = None) -> bool:
        """Whether the code, with ``kwargs``, evaluates a periodic cell at the Γ point only."""
        if callable(self.gamma_only):
            return bool(self.gamma_only(dict(kwargs or {})))
        return bool(self.gamma_only)

    @property
    def runs_python_under_mpi(self) -> bool:
        """Whether ``mpi_tasks > 1`` means ``mpiexec -n N python ...``."""
        return not self.command_driven


REGISTRY: dict[str, ReferenceCode] = {}


def register(code: ReferenceCode) -> ReferenceCode:
    """Add (or replace) a reference code; returns it."""
    REGISTRY[code.name] = code
    return code


def _magmom_spin(atoms, kwargs, moment):
    atoms.set_initial_magnetic_moments([moment])
    return f"initial magmom {moment:g}"


def get_code(name: str) -> ReferenceCode:
    """The registry entry of ``reference.name``; a ``module:Class`` name gets a generic entry
    (Python under MPI, periodic isolated atoms with initial magnetic moments)."""
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        module, class_name = name.split(":", 1)
        return ReferenceCode(name, module, class_name, isolated_periodic=True,
                             isolated_spin=_magmom_spin)
    raise ValueError(f"config key 'reference.name': unknown calculator {name!r}; use one of "
                     f"{sorted(REGISTRY)} or 'module:Class'")


def check_elements(name: str, elements) -> None:
    """A ValueError naming config key 'elements' when the code cannot do one of them (checked
    from the config, before any job runs)."""
    code = get_code(name)
    if code.elements is None:
        return
    known = code.elements()
    missing = sorted(set(elements) - set(known))
    if missing:
        raise ValueError(f"config key 'elements': reference {name!r} cannot compute {missing}; "
                         f"it knows {', '.join(sorted(known))} (config key 'reference.name')")


def gamma_only(name: str, kwargs: dict | None = None) -> bool:
    """Whether ``reference.name`` with ``reference.kwargs`` samples only the Γ point (an
    unknown ``module:Class`` is assumed not to)."""
    return get_code(name).samples_gamma_only(kwargs)


def _kpts_gamma_only(kwargs: dict) -> bool:
    """Γ only from ASE-style k-point kwargs: no ``kspacing``, no shift (espresso's
    ``koffset``), and ``kpts`` absent or None (GPAW then uses Γ, ase's espresso writes
    'K_POINTS gamma'), a 1x1x1 grid or ``{'size': (1, 1, 1)}``."""
    if kwargs.get("kspacing") is not None or any(np.atleast_1d(kwargs.get("koffset", 0))):
        return False
    kpts = kwargs.get("kpts")
    if kpts is None:
        return True
    if isinstance(kpts, dict):
        if "density" in kpts or "path" in kpts:
            return False
        kpts = kpts.get("size", (1, 1, 1))
    try:
        return [int(n) for n in kpts] == [1, 1, 1]
    except (TypeError, ValueError):     # an explicit list of k-points, a BandPath: not Γ only
        return False


def _emt_elements() -> set:
    from ase.calculators.emt import parameters
    return set(parameters)


def runs_python_under_mpi(name: str) -> bool:
    return get_code(name).runs_python_under_mpi


# ---- BLAS ------------------------------------------------------------------------------------
# what use_optimized_blas did in this process (a process loads at most one BLAS, before the
# code's module): {"path": the library loaded, or None}; empty before its first call
_BLAS_IN_USE: dict = {}


BLAS_SETTING_HINT = ("give the path of an optimized BLAS (e.g. OpenBLAS's libopenblas.so.0), "
                     "'auto' or 'bundled'")


class BlasSettingError(ValueError):
    """reference.blas names no loadable library."""


def bundled_reference_blas(module: str) -> list[str]:
    """The netlib reference BLAS/LAPACK libraries that the wheel of ``module``'s package
    bundles (auditwheel's ``<package>.libs/libblas-*.so*``, ``liblapack-*``); [] when the
    package links a system or conda BLAS, or is not installed."""
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        return []
    libs = Path(list(spec.submodule_search_locations)[0]).parent / f"{spec.name}.libs"
    if not libs.is_dir():
        return []
    return sorted(str(f) for f in libs.iterdir()
                  if f.name.startswith(("libblas", "liblapack")) and ".so" in f.name)


def use_optimized_blas(blas: str = "auto", threads: int | None = None) -> str | None:
    """Load an optimized BLAS/LAPACK into the global symbol scope, so that an extension module
    loaded after it finds its BLAS and LAPACK routines (dgemm_, dsygvd_, ...) there before its
    own libraries: tblite's PyPI wheel links netlib's reference BLAS, on which its SCF's dense
    algebra is several times slower (benchmarks/bench_xtb_blas.py).

    ``blas``: 'auto' (OpenBLAS where the system has it, else nothing), 'bundled' (nothing), or
    the path of a shared library exporting the standard Fortran BLAS/LAPACK symbols. Its
    threads are set to ``threads`` (default: OMP_NUM_THREADS, else 1), so that labelling jobs
    side by side do not oversubscribe the cores. Returns the library loaded, or None. Only the
    first call of a process has an effect; call it before the code's module is imported."""
    if _BLAS_IN_USE:
        return _BLAS_IN_USE["path"]
    path = None
    if blas == "auto":
        path = ctypes.util.find_library("openblas")
    elif blas != "bundled":
        path = blas
    lib = None
    if path is not None:
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as err:
            if blas != "auto":
                raise BlasSettingError(f"config key 'reference.blas' = {blas!r}: cannot load "
                                       f"it ({err}); {BLAS_SETTING_HINT}") from None
            path = None
    if lib is not None:
        if threads is None:
            threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
        for setter in ("openblas_set_num_threads", "openblas_set_num_threads64_"):
            if hasattr(lib, setter):
                getattr(lib, setter)(ctypes.c_int(max(1, threads)))
                break
    _BLAS_IN_USE["path"] = path
    return path


def blas_in_use() -> str | None:
    """The library use_optimized_blas loaded in this process (None: none)."""
    return _BLAS_IN_USE.get("path")


def _ships_reference_blas(code: ReferenceCode) -> bool:
    """Whether the installed package of ``code`` bundles the reference BLAS."""
    return code.may_bundle_reference_blas and bool(bundled_reference_blas(code.module))


def blas_note(name: str) -> str:
    """For the labelling log: which BLAS ``reference.name`` runs on, where its wheel bundles
    the reference BLAS ('' for the other codes)."""
    if not _ships_reference_blas(get_code(name)):
        return ""
    if blas_in_use():
        return f"BLAS {blas_in_use()}"
    return ("BLAS: the wheel's reference BLAS, several times slower (reference.blas; "
            "for 'auto', install OpenBLAS, e.g. apt install libopenblas0)")


def resolve(name: str, blas: str = "auto"):
    """The calculator class of ``reference.name`` (a clear ImportError naming the fix). For a
    code whose installed wheel bundles the reference BLAS, imported here for the first time,
    ``blas`` (reference.blas) is put in front of it first (use_optimized_blas)."""
    code = get_code(name)
    if code.module.split(".")[0] not in sys.modules and _ships_reference_blas(code):
        use_optimized_blas(blas)
    try:
        module = importlib.import_module(code.module)
    except ImportError as err:
        hint = (f"pip install 'mtplib[{code.extra}]' (or use envs/{code.conda_env}.yaml)"
                if code.extra else "install the package that provides it, or check PYTHONPATH")
        raise ImportError(
            f"config key 'reference.name' = {name!r} needs the Python module {code.module!r}, "
            f"which is not importable ({err}); {hint}") from err
    try:
        return getattr(module, code.class_name)
    except AttributeError as err:
        raise ImportError(f"config key 'reference.name' = {name!r}: module {code.module!r} has "
                          f"no {code.class_name!r}") from err


def _scratch_directory(name: str) -> str:
    path = tempfile.mkdtemp(prefix=f"mtplib-{name.replace(':', '-')}-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def make_calculator(name: str, kwargs: dict | None = None, mpi_prefix: str = "",
                    blas: str = "auto"):
    """A fresh calculator of ``reference.name`` with ``reference.kwargs``.

    ``mpi_prefix`` (e.g. ``"srun -n 8"``) goes in front of the command of command-driven codes;
    the others ignore it (their Python process is itself launched under MPI). ``blas``:
    reference.blas (resolve)."""
    code = get_code(name)
    kwargs = dict(kwargs or {})
    cls = resolve(name, blas)
    if code.scratch_directory and "directory" not in kwargs:
        # two chunks side by side in one folder would overwrite each other's files
        kwargs["directory"] = _scratch_directory(name)
    if code.prepare is not None:
        kwargs = code.prepare(kwargs, mpi_prefix)
    return cls(**kwargs)


def calculator_factory(name: str, kwargs: dict | None = None, mpi_prefix: str = "",
                       symbols=None, blas: str = "auto"):
    """A zero-argument callable returning a fresh calculator (used for retries).

    A missing package, a ``blas`` (reference.blas) that cannot be loaded, or the code's
    preflight check on the ``symbols`` to label (GPAW's PAW setups), fails here, before any
    structure is touched."""
    resolve(name, blas)
    code = get_code(name)
    if code.preflight is not None and symbols:
        code.preflight(sorted(set(symbols)), dict(kwargs or {}))
    return lambda: make_calculator(name, kwargs, mpi_prefix, blas)


# ---- GPAW ------------------------------------------------------------------------------------
# Debian's `gpaw-data` package (apt) puts the PAW setups here; pip's `gpaw-data` (a dependency
# of `pip install gpaw`) is found by GPAW itself.
DEBIAN_GPAW_SETUPS = "/usr/share/gpaw-setups"
# Exchange-correlation names whose PAW setup files are named after them (``Hf.PBE.gz``).
GPAW_SETUP_XC = {"LDA", "PBE", "RPBE", "revPBE", "GLLBSC"}


class GpawSetupsMissing(FileNotFoundError):
    """GPAW would not find the PAW setup file of an element."""


def gpaw_setup_paths(extra=()) -> list[str]:
    """Folders searched for GPAW's PAW setups, first hit wins: ``extra``
    (``reference.kwargs.setup_paths``), then what GPAW itself knows (``GPAW_SETUP_PATH``,
    ``~/.gpaw/rc.py``, pip's ``gpaw-data``), then Debian's folder when it exists."""
    import gpaw

    if isinstance(extra, (str, Path)):
        extra = [extra]
    paths = [str(p) for p in extra] + [str(p) for p in gpaw.setup_paths]
    if os.path.isdir(DEBIAN_GPAW_SETUPS):
        paths.append(DEBIAN_GPAW_SETUPS)
    return list(dict.fromkeys(paths))


def find_gpaw_setups(symbols, xc: str = "LDA", extra_paths=(), setups="paw") -> dict:
    """{symbol: setup file} for GPAW's standard PAW setups; GpawSetupsMissing names the missing
    files and the folders searched. Setups other than the standard ones are not checked."""
    paths = gpaw_setup_paths(extra_paths)
    found, missing = {}, []
    for symbol in sorted(set(symbols)):
        kind = setups.get(symbol, "paw") if isinstance(setups, dict) else setups
        if kind != "paw" or xc not in GPAW_SETUP_XC:
            continue  # named or non-PAW setups (sg15, hgh, ghost, ...): left to GPAW
        name = f"{symbol}.{xc}"
        hits = [Path(p) / f for p in paths for f in (name, f"{name}.gz") if (Path(p) / f).is_file()]
        if hits:
            found[symbol] = str(hits[0])
        else:
            missing.append(name)
    if missing:
        raise GpawSetupsMissing(
            f"GPAW PAW setup file(s) {', '.join(missing)} not found in {paths or '(no folder)'}; "
            "pip install gpaw-data (or apt-get install gpaw-data), or point GPAW_SETUP_PATH or "
            "the config key reference.kwargs.setup_paths at a folder holding them")
    return found


def _gpaw_prepare(kwargs, mpi_prefix):
    import gpaw

    # in place: gpaw.setup_data holds a reference to this very list
    gpaw.setup_paths[:] = gpaw_setup_paths(kwargs.pop("setup_paths", ()))
    return kwargs


def _gpaw_preflight(symbols, kwargs):
    find_gpaw_setups(symbols, kwargs.get("xc", "LDA"), kwargs.get("setup_paths", ()),
                     kwargs.get("setups", "paw"))


def _gpaw_gamma(kwargs):
    kwargs["kpts"] = {"size": (1, 1, 1), "gamma": True}


def _gpaw_spin(atoms, kwargs, moment):
    atoms.set_initial_magnetic_moments([moment])
    kwargs.setdefault("hund", True)
    return "hund"


# ---- plane-wave codes driven through their command -------------------------------------------
def _plane_wave_gamma(kwargs):
    kwargs.pop("kspacing", None)
    kwargs["kpts"] = (1, 1, 1)


def _vasp_gamma_only(kwargs):
    # ase's Vasp writes kpts (1, 1, 1) unless told; kpts None leaves KPOINTS to the user
    if "kpts" in kwargs and kwargs["kpts"] is None:
        return False
    return _kpts_gamma_only(kwargs)


def _espresso_prepare(kwargs, mpi_prefix):
    from ase.calculators.espresso import EspressoProfile

    profile = dict(kwargs.pop("profile", {}) or {})
    command = profile.pop("command", "pw.x")
    if mpi_prefix:
        command = f"{mpi_prefix} {command}"
    profile.setdefault("pseudo_dir", kwargs.pop("pseudo_dir", "."))
    kwargs["profile"] = EspressoProfile(command=command, **profile)
    return kwargs


def _vasp_prepare(kwargs, mpi_prefix):
    if mpi_prefix:
        kwargs["command"] = f"{mpi_prefix} {kwargs.get('command', 'vasp_std')}"
    return kwargs


def _vasp_spin(atoms, kwargs, moment):
    atoms.set_initial_magnetic_moments([moment])
    kwargs.setdefault("ispin", 2)
    return f"ispin 2, magmom {moment:g}"


def _tblite_spin(atoms, kwargs, moment):
    kwargs.setdefault("multiplicity", int(round(moment)) + 1)
    kwargs.setdefault("spin_polarization", 1.0)
    return f"multiplicity {kwargs['multiplicity']}"


register(ReferenceCode("emt", "ase.calculators.emt", "EMT", elements=_emt_elements))
register(ReferenceCode("tblite", "tblite.ase", "TBLite", extra="xtb", conda_env="xtb",
                       isolated_spin=_tblite_spin, gamma_only=True,
                       may_bundle_reference_blas=True))
register(ReferenceCode("gpaw", "gpaw", "GPAW", extra="dft", conda_env="dft",
                       isolated_periodic=True, isolated_gamma_only=_gpaw_gamma,
                       isolated_spin=_gpaw_spin, prepare=_gpaw_prepare,
                       preflight=_gpaw_preflight, gamma_only=_kpts_gamma_only))
register(ReferenceCode("espresso", "ase.calculators.espresso", "Espresso", conda_env="dft",
                       command_driven=True, scratch_directory=True, isolated_periodic=True,
                       isolated_gamma_only=_plane_wave_gamma, prepare=_espresso_prepare,
                       gamma_only=_kpts_gamma_only))
register(ReferenceCode("vasp", "ase.calculators.vasp", "Vasp", conda_env="dft",
                       command_driven=True, scratch_directory=True, isolated_periodic=True,
                       isolated_gamma_only=_plane_wave_gamma, isolated_spin=_vasp_spin,
                       prepare=_vasp_prepare, gamma_only=_vasp_gamma_only))
