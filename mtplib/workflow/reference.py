"""Reference calculators for labelling: one factory behind ``reference.name``.

Built-in names map to ASE calculators; any other name of the form
``module:Class`` is imported and called with ``reference.kwargs``.
"""

from __future__ import annotations

import importlib

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


def make_calculator(name: str, kwargs: dict | None = None, mpi_prefix: str = ""):
    """Instantiate the reference calculator.

    ``mpi_prefix`` (e.g. ``"srun -n 8"``) is put in front of the external
    command of file-based codes (espresso, vasp); other codes ignore it because
    their Python process is itself launched under MPI.
    """
    kwargs = dict(kwargs or {})
    cls = resolve(name)
    if name == "espresso":
        from ase.calculators.espresso import EspressoProfile

        profile = dict(kwargs.pop("profile", {}) or {})
        command = profile.pop("command", "pw.x")
        if mpi_prefix:
            command = f"{mpi_prefix} {command}"
        profile.setdefault("pseudo_dir", kwargs.pop("pseudo_dir", "."))
        kwargs["profile"] = EspressoProfile(command=command, **profile)
    elif name == "vasp" and mpi_prefix:
        kwargs["command"] = f"{mpi_prefix} {kwargs.get('command', 'vasp_std')}"
    return cls(**kwargs)


def calculator_factory(name: str, kwargs: dict | None = None, mpi_prefix: str = ""):
    """A zero-argument callable returning a fresh calculator (used for retries)."""
    # resolve now so that a missing package fails before any structure is touched
    resolve(name)
    return lambda: make_calculator(name, kwargs, mpi_prefix)
