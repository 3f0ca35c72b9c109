"""File formats: MLIP's `.mtp` and `.cfg`; everything else through `ase.io` (extxyz by default)."""
from __future__ import annotations

from pathlib import Path

import ase.io


def read_dataset(path, species=None):
    """A list of Atoms from a `.cfg` (MLIP) or any file ASE reads (extended XYZ by default)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    if path.suffix == ".cfg":
        from .cfg import read_cfg
        return read_cfg(path, species=species)
    images = ase.io.read(path, ":")
    return images if isinstance(images, list) else [images]


def write_dataset(path, images, species=None):
    """Write a list of Atoms as `.cfg` or through ASE (extended XYZ for `.xyz`/`.extxyz`)."""
    path = Path(path)
    if path.suffix == ".cfg":
        from .cfg import write_cfg
        return write_cfg(path, images, species=species)
    ase.io.write(path, images, format="extxyz" if path.suffix in (".xyz", ".extxyz") else None)
