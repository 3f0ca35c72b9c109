"""File formats: MLIP's `.mtp` and `.cfg`; everything else through `ase.io` (extxyz by default)."""
from __future__ import annotations

from pathlib import Path

import ase.io


def check_output_path(path, what: str = "output") -> None:
    """A ValueError naming ``path`` when it cannot be written as a file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"{what} {path}: no such directory {path.parent}")


def read_dataset(path, species=None):
    """A list of Atoms from a `.cfg` (MLIP) or any file ASE reads (extended XYZ by default)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    if path.suffix == ".cfg":
        from .cfg import read_cfg
        return read_cfg(path, species=species)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a data file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    try:
        images = ase.io.read(path, ":")
    except Exception as exc:      # ase.io raises anything on an unknown format or a bad file
        raise ValueError(f"{path}: cannot read as a dataset ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'unknown format'})") from None
    images = images if isinstance(images, list) else [images]
    if not images:
        raise ValueError(f"{path}: holds no configurations")
    return images


def write_dataset(path, images, species=None):
    """Write a list of Atoms as `.cfg` or through ASE (extended XYZ for `.xyz`/`.extxyz`)."""
    path = Path(path)
    check_output_path(path)
    if path.suffix == ".cfg":
        from .cfg import write_cfg
        return write_cfg(path, images, species=species)
    ase.io.write(path, images, format="extxyz" if path.suffix in (".xyz", ".extxyz") else None)
