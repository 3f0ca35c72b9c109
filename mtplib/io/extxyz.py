"""A fast path for the common case of extended XYZ: `Frames` in and out without `Atoms`.

The reader takes files whose comment lines hold only `Lattice`, `Properties`, `pbc`,
`energy`, `free_energy` (not kept) and a 9-component `stress`, and whose columns are
species, pos and optionally forces and energies (per-atom energies); it returns None for
anything else, which `ase.io` then reads (the general path). The writer writes what
`ase.io.write(..., format="extxyz")` writes for Atoms with a SinglePointCalculator of
energy, forces, stress and energies -- byte for byte -- and declines (None) Frames with
`info` entries, which go through ASE.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from .frames import Frames

__all__ = ["read_extxyz_frames", "write_extxyz_frames"]

_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|[^\s"]+)')
_KEYS = {"Lattice", "Properties", "pbc", "energy", "free_energy", "stress"}
_COLUMNS = {"forces": 3, "energies": 1}
_BOOL = {"T": True, "F": False, "True": True, "False": False}


def _comment(line):
    """{key: value text} of a comment line of key=value pairs, None when it holds anything
    else (escaped quotes, bare keys, other keys)."""
    pairs, pos = {}, 0
    line = line.rstrip()
    while pos < len(line):
        m = _PAIR.match(line, pos)
        if m is None:
            return None
        key, value = m.group(1), m.group(2)
        if key not in _KEYS or key in pairs:
            return None
        pairs[key] = value.strip('"')
        pos = m.end()
    return pairs


def _columns(properties):
    """[(name, ncols)] after species and pos, or None when not species:S:1:pos:R:3:[forces:R:3]
    [energies:R:1]."""
    fields = properties.split(":")
    if len(fields) % 3 or fields[:6] != ["species", "S", "1", "pos", "R", "3"]:
        return None
    out = []
    for k in range(6, len(fields), 3):
        name, kind, count = fields[k:k + 3]
        if kind != "R" or _COLUMNS.get(name) != (int(count) if count.isdigit() else -1) \
                or name in dict(out):
            return None
        out.append((name, _COLUMNS[name]))
    return out


def read_extxyz_frames(path: str | os.PathLike) -> Frames | None:
    """Frames of an extended XYZ file of the common form (see the module), parsed with one
    numpy call for the numbers of all atom lines; None when the file is not of that form.
    Same values as `ase.io.read(path, ":")`."""
    lines = Path(path).read_text().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    sizes, cells, pbcs, energies, stresses, bodies, layout = [], [], [], [], [], [], None
    i = 0
    try:
        while i < len(lines):
            n = int(lines[i])
            info = _comment(lines[i + 1])
            if info is None or "Properties" not in info or n < 0:
                return None
            columns = _columns(info["Properties"])
            if columns is None or (layout is not None and columns != layout):
                return None
            layout = columns
            cell = np.zeros((3, 3))
            if "Lattice" in info:
                cell = np.array([float(v) for v in info["Lattice"].split()]).reshape(3, 3)
                pbc = [True, True, True]
            else:
                pbc = [False, False, False]
            if "pbc" in info:
                pbc = [_BOOL[v] for v in info["pbc"].split()]
                if len(pbc) != 3:
                    return None
            stress = None
            if "stress" in info:
                s = np.array([float(v) for v in info["stress"].split()]).reshape(3, 3)
                stress = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
            energy = float(info["energy"]) if "energy" in info else None
            if i + 2 + n > len(lines):
                return None
            bodies.extend(lines[i + 2:i + 2 + n])
            sizes.append(n)
            cells.append(cell)
            pbcs.append(pbc)
            energies.append(energy)
            stresses.append(stress)
            i += 2 + n
    except (ValueError, KeyError, IndexError):
        return None
    if not sizes:
        return None
    n_cols = 3 + sum(c for _, c in layout)
    parts = [line.split(None, 1) for line in bodies]
    try:
        numbers = np.array([atomic_numbers[p[0]] for p in parts], dtype=np.int64)
        data = np.fromstring("\n".join([p[1] for p in parts]), sep=" ") if parts else np.zeros(0)
    except (KeyError, IndexError, ValueError):
        return None
    if data.size != len(parts) * n_cols:
        return None
    data = data.reshape(len(parts), n_cols)
    atom_start = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=atom_start[1:])
    labels, col = {}, 3
    for name, count in layout:
        labels[name] = np.ascontiguousarray(data[:, col:col + count].reshape(-1, *(() if count == 1 else (count,))))
        col += count
    energy = None
    if all(e is not None for e in energies):
        energy = np.array(energies, dtype=np.float64)
    stress = None
    if any(s is not None for s in stresses):
        stress = np.full((len(sizes), 6), np.nan)
        for c, s in enumerate(stresses):
            if s is not None:
                stress[c] = s
    return Frames(atom_start, numbers, np.ascontiguousarray(data[:, :3]),
                  np.array(cells).reshape(-1, 3, 3), np.array(pbcs, dtype=bool).reshape(-1, 3),
                  None, energy, labels.get("forces"), stress, labels.get("energies"),
                  [{} for _ in sizes])


def write_extxyz_frames(path: str | os.PathLike, frames: Frames) -> bool:
    """Write Frames as `ase.io.write` writes the same configurations with a
    SinglePointCalculator of their labels (species, pos, the MLIP types as `mtp_type`
    when known, forces, energies; energy and stress on the comment line). Returns False,
    writing nothing, for Frames it does not handle (`info` entries, unknown atomic numbers)."""
    if any(frames.info) or (frames.numbers <= 0).any() or (frames.numbers >= len(chemical_symbols)).any():
        return False
    start = frames.atom_start
    n_atoms = int(start[-1])
    symbols = np.array(chemical_symbols, dtype=object)[frames.numbers].tolist()
    columns = [frames.positions]
    names = ["species:S:1", "pos:R:3"]
    fmt = "%-2s %16.8f %16.8f %16.8f"
    if frames.types is not None:
        names.append("mtp_type:I:1")
        fmt += " %8d"
        columns.append(frames.types.reshape(-1, 1))
    if frames.forces is not None:
        names.append("forces:R:3")
        fmt += " %16.8f %16.8f %16.8f"
        columns.append(frames.forces)
    if frames.energies is not None:
        names.append("energies:R:1")
        fmt += " %16.8f"
        columns.append(frames.energies.reshape(-1, 1))
    fmt += "\n"
    n_cols = 1 + sum(c.shape[1] for c in columns)
    data = np.empty((n_atoms, n_cols), dtype=object)
    data[:, 0] = symbols
    col = 1
    for c in columns:
        data[:, col:col + c.shape[1]] = c.tolist() if c.dtype.kind == "i" else c
        col += c.shape[1]
    flat = data.ravel().tolist()
    properties = "Properties=" + ":".join(names)
    cells = frames.cells.tolist()
    pbc = frames.pbc.tolist()
    energy = frames.energy.tolist() if frames.energy is not None else None
    stress = frames.stress.tolist() if frames.stress is not None else None
    formats, out = {}, []
    for c in range(len(frames)):
        a0, a1 = int(start[c]), int(start[c + 1])
        head = [str(a1 - a0) + "\n"]
        if any(any(row) for row in cells[c]):
            head.append('Lattice="' + " ".join(str(v) for row in cells[c] for v in row) + '" ')
        head.append(properties)
        if energy is not None:
            head.append(f" energy={energy[c]}")
        if stress is not None and stress[c][0] == stress[c][0]:          # (NaN: none)
            xx, yy, zz, yz, xz, xy = stress[c]
            head.append(f' stress="{xx} {xy} {xz} {xy} {yy} {yz} {xz} {yz} {zz}"')
        head.append(' pbc="' + " ".join("T" if p else "F" for p in pbc[c]) + '"\n')
        out.append("".join(head))
        line = formats.get(a1 - a0)
        if line is None:
            line = formats[a1 - a0] = fmt * (a1 - a0)
        out.append(line % tuple(flat[a0 * n_cols:a1 * n_cols]))
    Path(path).write_text("".join(out))
    return True
