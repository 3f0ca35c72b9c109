"""Reference calculators for labelling: one factory behind ``reference.name``.

Built-in names map to ASE calculators; any other name of the form
``module:Class`` is imported and called with ``reference.kwargs``.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from pathlib import Path

# name -> (module, class, pip extra that provides the module or None)
BUILTIN = {
    "emt": ("ase.calculators.emt", "EMT", None),
    "tblite": ("tblite.ase", "TBLite", "xtb"),
    "gpaw": ("gpaw", "GPAW", "dft"),
    "espresso": ("ase.calculators.espresso", "Espresso", None),
    "vasp": ("ase.calculators.vasp", "Vasp", None),
}

# Codes driven through an external command (files in, files out): MPI is
# requested by prefixing the launcher to that command, not by running Python
# under mpiexec. Everything else runs the Python process itself under MPI.
COMMAND_CODES = {"espresso", "vasp"}


def runs_python_under_mpi(name: str) -> bool:
    """Whether ``reference.mpi_tasks > 1`` means ``mpiexec -n N python ...``."""
    return name not in COMMAND_CODES


def resolve(name: str):
    """Return the calculator class for ``reference.name`` (clear ImportError)."""
    if name in BUILTIN:
        module_name, class_name, extra = BUILTIN[name]
    elif ":" in name:
        module_name, class_name = name.split(":", 1)
        extra = None
    else:
        raise ValueError(
            f"config key 'reference.name': unknown calculator {name!r}; use one of "
            f"{sorted(BUILTIN)} or 'module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        hint = (
            f"pip install 'mtplib[{extra}]' (or use envs/{extra}.yaml)"
            if extra
            else "install the package that provides it, or check PYTHONPATH"
        )
        raise ImportError(
            f"config key 'reference.name' = {name!r} needs the Python module "
            f"{module_name!r}, which is not importable ({err}); {hint}"
        ) from err
    try:
        return getattr(module, class_name)
    except AttributeError as err:
        raise ImportError(
            f"config key 'reference.name' = {name!r}: module {module_name!r} has no {class_name!r}"
        ) from err


# Debian's `gpaw-data` package (apt) puts the PAW setups here; pip's `gpaw-data` (a dependency
# of `pip install gpaw`) is found by GPAW itself.
DEBIAN_GPAW_SETUPS = "/usr/share/gpaw-setups"
# Exchange-correlation names whose PAW setup files are named after them (``Hf.PBE.gz``).
GPAW_SETUP_XC = {"LDA", "PBE", "RPBE", "revPBE", "GLLBSC"}


class GpawSetupsMissing(FileNotFoundError):
    """GPAW would not find the PAW setup file of an element."""


def gpaw_setup_paths(extra=()) -> list[str]:
    """Folders searched for GPAW's PAW setups, first hit wins.

    ``extra`` (``reference.kwargs.setup_paths``) comes first, then what GPAW itself knows
    (``GPAW_SETUP_PATH``, ``~/.gpaw/rc.py``, the pip package ``gpaw-data``), then Debian's
    ``gpaw-data`` folder when it exists.
    """
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
            "the config key reference.kwargs.setup_paths at a folder holding them"
        )
    return found


def _scratch_directory(name: str) -> str:
    path = tempfile.mkdtemp(prefix=f"mtplib-{name}-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def make_calculator(name: str, kwargs: dict | None = None, mpi_prefix: str = ""):
    """Instantiate the reference calculator.

    ``mpi_prefix`` (e.g. ``"srun -n 8"``) is put in front of the external
    command of file-based codes (espresso, vasp); other codes ignore it because
    their Python process is itself launched under MPI.
    """
    kwargs = dict(kwargs or {})
    cls = resolve(name)
    if name in COMMAND_CODES and "directory" not in kwargs:
        # Their input/output files (espresso.pwi, pwscf.save, OUTCAR...) live in the calculator's
        # directory: two chunks running side by side in the workflow folder would overwrite each
        # other's. One private scratch folder per calculator instead, removed at exit.
        kwargs["directory"] = _scratch_directory(name)
    if name == "espresso":
        from ase.calculators.espresso import EspressoProfile

        profile = dict(kwargs.pop("profile", {}) or {})
        command = profile.pop("command", "pw.x")
        if mpi_prefix:
            command = f"{mpi_prefix} {command}"
        profile.setdefault("pseudo_dir", kwargs.pop("pseudo_dir", "."))
        kwargs["profile"] = EspressoProfile(command=command, **profile)
    elif name == "gpaw":
        import gpaw

        # in place: gpaw.setup_data holds a reference to this very list
        gpaw.setup_paths[:] = gpaw_setup_paths(kwargs.pop("setup_paths", ()))
    elif name == "vasp" and mpi_prefix:
        kwargs["command"] = f"{mpi_prefix} {kwargs.get('command', 'vasp_std')}"
    return cls(**kwargs)


def calculator_factory(name: str, kwargs: dict | None = None, mpi_prefix: str = "",
                       symbols=None):
    """A zero-argument callable returning a fresh calculator (used for retries).

    A missing package, or (for GPAW, given the ``symbols`` to label) a missing PAW setup,
    fails here, before any structure is touched: otherwise every structure would be
    retried and listed as failed.
    """
    resolve(name)
    if name == "gpaw" and symbols:
        kw = kwargs or {}
        find_gpaw_setups(symbols, kw.get("xc", "LDA"), kw.get("setup_paths", ()),
                         kw.get("setups", "paw"))
    return lambda: make_calculator(name, kwargs, mpi_prefix)
