"""File formats: MLIP's `.mtp` and `.cfg`; everything else through `ase.io` (extxyz by default).

`read_frames` / `write_frames` are the fast path of `mtplib evaluate`: `.cfg` and the common
form of extxyz as joined arrays (`Frames`), every other file through `ase.io` and
`Frames.from_atoms` / `to_atoms`. `ase.io` is imported only when a file needs it (it takes
most of the start-up time of a small command).
"""
from __future__ import annotations

from pathlib import Path

from .frames import Frames

__all__ = ["Frames", "read_dataset", "write_dataset", "read_frames", "write_frames"]

_EXTXYZ = (".xyz", ".extxyz")


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
    import ase.io
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
    import ase.io
    ase.io.write(path, images, format="extxyz" if path.suffix in _EXTXYZ else None)


def read_frames(path, species=None):
    """`Frames` of a data file: `.cfg` and common extxyz by the fast readers, any other file
    (or what they decline) by `read_dataset`; the same values either way."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    frames = None
    if path.suffix == ".cfg":
        from .cfg import read_cfg_frames
        frames = read_cfg_frames(path, species)
    elif path.suffix in _EXTXYZ:
        from .extxyz import read_extxyz_frames
        frames = read_extxyz_frames(path)
    return frames if frames is not None else Frames.from_atoms(read_dataset(path, species))


def write_frames(path, frames, species=None):
    """Write `Frames` (labels: its energy, forces, stress, energies) as `write_dataset` writes
    the same configurations as Atoms: `.cfg` and extxyz by the fast writers (the same
    bytes), anything else through ASE."""
    path = Path(path)
    if path.suffix == ".cfg":
        from .cfg import write_cfg_frames
        return write_cfg_frames(path, frames, species)
    if path.suffix in _EXTXYZ:
        from .extxyz import write_extxyz_frames
        if write_extxyz_frames(path, frames):
            return None
    return write_dataset(path, frames.to_atoms(species), species)
