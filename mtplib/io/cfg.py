"""MLIP ``.cfg`` configurations <-> ``list[ase.Atoms]``.

A block of the MLIP-2 format::

    BEGIN_CFG
     Size
        2
     Supercell
        a1x a1y a1z
        a2x a2y a2z
        a3x a3y a3z
     AtomData:  id type  cartes_x cartes_y cartes_z  fx fy fz
        1  0  0.0 0.0 0.0  0.0 0.0 0.0
        2  1  1.0 1.0 1.0  0.0 0.0 0.0
     Energy
        -7.0
     PlusStress:  xx yy zz yz xz xy
        0.1 0.1 0.1 0.0 0.0 0.0
     Feature  conf_id  AgPd
    END_CFG

``PlusStress`` is the virial in eV, ``-stress * volume`` with ASE's sign of the stress;
on reading it becomes an ASE stress in eV/Å³, ``-PlusStress / volume``.  The older variant
(``SuperCell``, ``Stress`` for ``PlusStress``, blocks closed by ``END``) reads too; its
``Stress`` turns out to be ``+stress * volume`` (checked against energy-volume curves of the
Ag-Pd data), so it is read as ``stress = +Stress / volume``.  Files are always written in
the MLIP-2 variant.

Labels are attached as a :class:`~ase.calculators.singlepoint.SinglePointCalculator`,
the MLIP type of every atom is kept in ``atoms.arrays["mtp_type"]`` and every
``Feature name value`` line in ``atoms.info[name]`` (as a string).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers

from .frames import Frames

__all__ = ["iter_cfg", "read_cfg", "write_cfg", "convert", "read_cfg_frames",
           "write_cfg_frames"]

_VOIGT = {"xx": 0, "yy": 1, "zz": 2, "yz": 3, "zy": 3, "xz": 4, "zx": 4, "xy": 5, "yx": 5}
_VOIGT_ORDER = ("xx", "yy", "zz", "yz", "xz", "xy")
_POS_COLS = ("cartes_x", "cartes_y", "cartes_z")
_DIRECT_COLS = ("direct_x", "direct_y", "direct_z")
_FORCE_COLS = ("fx", "fy", "fz")
_KNOWN_COLS = {"id", "type", *_POS_COLS, *_DIRECT_COLS, *_FORCE_COLS}
_EXTRA_COLS = ("nbh_grades",)  # further AtomData columns MLIP-2 writes and reads back
_NUM = "%.16e"
# The old variant's `Stress` is +stress*volume, the opposite sign of `PlusStress` (the
# virial): in ../shared/data/agpd/train.cfg its trace follows +3 V dE/dV along every
# energy-volume series (tests/test_cfg.py checks this), while the virial's is -3 V dE/dV.
_OLD_STRESS_SIGN = -1.0


class _Lines:
    """Numbered, stripped lines of a file, with one line of look-ahead."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._fh = open(path)
        self._read = 0  # lines read from the file so far
        self.lineno = 0  # number of the line last returned by next()
        self._peeked: str | None = None

    def close(self) -> None:
        self._fh.close()

    def peek(self) -> str | None:
        """The next non-blank line (stripped) without consuming it; None at end of file."""
        if self._peeked is None:
            for raw in self._fh:
                self._read += 1
                line = raw.strip()
                if line and not line.startswith("#"):
                    self._peeked = line
                    break
            else:
                return None
        return self._peeked

    def next(self) -> str | None:
        line = self.peek()
        self._peeked = None
        self.lineno = self._read
        return line

    def error(self, message: str, at_next: bool = False) -> ValueError:
        """A ValueError naming the file and the line last read (or the next one)."""
        lineno = self._read if at_next and self._peeked is not None else self.lineno
        if at_next and self._peeked is None:  # end of file
            lineno = self._read
        return ValueError(f"{self.path}:{lineno}: {message}")


def _is_numeric_row(line: str | None) -> bool:
    if line is None:
        return False
    try:
        float(line.split()[0])
    except ValueError:
        return False
    return True


def _floats(src: _Lines, line: str, n: int | None, what: str) -> list[float]:
    fields = line.split()
    if n is not None and len(fields) != n:
        raise src.error(f"{what}: expected {n} numbers, found {len(fields)} in {line!r}")
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise src.error(f"{what}: non-numeric field in {line!r}") from None


def _int(src: _Lines, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise src.error(f"{what}: expected an integer, found {text!r}") from None


def _keyword(line: str) -> tuple[str, list[str]]:
    """('supercell', rest) for 'SuperCell ...'; a trailing ':' is dropped."""
    head, *rest = line.split()
    if rest and rest[0] == ":":  # 'AtomData : id type ...'
        rest = rest[1:]
    return head.rstrip(":").lower(), rest


def _value_after(src: _Lines, rest: list[str], what: str) -> str:
    """The value of a keyword: on the same line ('Size 4') or on the next one."""
    if rest:
        return " ".join(rest)
    line = src.next()
    if line is None:
        raise src.error(f"end of file while reading {what}")
    return line


def _read_block(src: _Lines, species: Sequence[str] | None, start: int) -> Atoms:
    size: int | None = None
    size_line = 0
    cell_rows: list[list[float]] = []
    columns: list[str] | None = None
    rows: list[list[float]] = []
    energy: float | None = None
    plus_stress: np.ndarray | None = None
    features: dict[str, str] = {}
    skipping = False  # inside a section we do not interpret (e.g. EnergyWeight)

    while True:
        line = src.next()
        if line is None:
            raise src.error(f"end of file inside the configuration begun at line {start} "
                            "(missing END_CFG)")
        key, rest = _keyword(line)
        if key in ("end_cfg", "end"):
            break
        if key == "begin_cfg":
            raise src.error(f"BEGIN_CFG inside the configuration begun at line {start} "
                            "(missing END_CFG)")
        if _is_numeric_row(line):
            if skipping:
                continue
            raise src.error(f"unexpected numeric line {line!r}")
        skipping = False

        if key == "size":
            size = _int(src, _value_after(src, rest, "Size"), "Size")
            size_line = src.lineno
            if size < 0:
                raise src.error(f"Size must be non-negative, found {size}")
        elif key == "supercell":
            while len(cell_rows) < 3 and _is_numeric_row(src.peek()):
                cell_rows.append(_floats(src, src.next(), 3, "Supercell"))
            if not cell_rows:
                raise src.error("Supercell without lattice vectors")
        elif key == "atomdata":
            columns = [c.lower() for c in rest]
            for need in ("type",):
                if need not in columns:
                    raise src.error(f"AtomData has no '{need}' column")
            if not (set(_POS_COLS) <= set(columns) or set(_DIRECT_COLS) <= set(columns)):
                raise src.error("AtomData needs cartes_x/y/z or direct_x/y/z columns")
            while _is_numeric_row(src.peek()):
                if size is not None and len(rows) == size:
                    src.next()
                    raise src.error(f"more atom lines than Size {size} (line {size_line})")
                row = src.next()
                rows.append(_floats(src, row, len(columns), "AtomData"))
                t = rows[-1][columns.index("type")]
                if t != int(t):
                    raise src.error(f"AtomData: type must be an integer in {row!r}")
                if species is not None and not 0 <= t < len(species):
                    raise src.error(f"AtomData: type {int(t)}, but species {list(species)} "
                                    f"has only {len(species)} entries")
            if size is not None and len(rows) != size:
                raise src.error(f"Size {size} (line {size_line}) but {len(rows)} atom lines",
                                at_next=True)
        elif key == "energy":
            energy = _floats(src, _value_after(src, rest, "Energy"), 1, "Energy")[0]
        elif key in ("plusstress", "stress"):
            order = [c.lower() for c in rest] or list(_VOIGT_ORDER)
            if sorted(_VOIGT[c] for c in order if c in _VOIGT) != list(range(6)):
                raise src.error(f"{key}: cannot understand components {' '.join(rest)!r}")
            nxt = src.next()
            if nxt is None:
                raise src.error(f"end of file while reading {line!r}")
            values = _floats(src, nxt, 6, "PlusStress")
            plus_stress = np.zeros(6)
            for name, v in zip(order, values):
                plus_stress[_VOIGT[name]] = v
            if key == "stress":
                plus_stress *= _OLD_STRESS_SIGN
        elif key == "feature":
            if not rest:
                raise src.error("Feature without a name")
            features[rest[0]] = line.split(None, 2)[2] if len(rest) > 1 else ""
        else:
            # EnergyWeight, ForceWeights, ...: skip it and any numeric lines that follow
            skipping = True

    if columns is None:
        if size:
            raise src.error(f"configuration begun at line {start} has Size {size} "
                            "but no AtomData")
        columns, rows = ["type", *_POS_COLS], []
    data = np.array(rows, dtype=float).reshape(len(rows), len(columns))
    col = {c: data[:, i] for i, c in enumerate(columns)}
    types = col["type"].astype(int)

    if species is not None:
        numbers = [atomic_numbers[species[t]] for t in types]
    else:
        numbers = np.zeros(len(types), dtype=int)

    cell = np.zeros((3, 3))
    pbc = np.zeros(3, dtype=bool)
    for i, row in enumerate(cell_rows):
        cell[i] = row
        pbc[i] = True
    if set(_POS_COLS) <= set(columns):
        positions = np.column_stack([col[c] for c in _POS_COLS])
    else:
        if len(cell_rows) < 3:
            raise ValueError(f"{src.path}:{start}: direct (fractional) coordinates need a "
                             "Supercell of three rows")
        positions = np.column_stack([col[c] for c in _DIRECT_COLS]) @ cell

    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
    atoms.arrays["mtp_type"] = types
    for c in columns:
        if c not in _KNOWN_COLS:  # e.g. nbh_grades written by `mlp select`
            atoms.arrays[c] = col[c].copy()
    atoms.info.update(features)

    results = {}
    if energy is not None:
        results["energy"] = energy
    if set(_FORCE_COLS) <= set(columns):
        results["forces"] = np.column_stack([col[c] for c in _FORCE_COLS])
    if plus_stress is not None:
        if len(cell_rows) < 3:
            raise ValueError(f"{src.path}:{start}: PlusStress given for a configuration "
                             "without a three-row Supercell (volume undefined)")
        results["stress"] = -plus_stress / abs(np.linalg.det(cell))
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def iter_cfg(path: str | os.PathLike, species: Sequence[str] | None = None) -> Iterator[Atoms]:
    """Yield the configurations of an MLIP ``.cfg`` file one by one.

    ``species[t]`` is the element of MLIP type ``t``; without it atoms are 'X' (number 0)
    and only ``atoms.arrays["mtp_type"]`` tells them apart.  Malformed input raises a
    ``ValueError`` that names the file and the line.
    """
    if species is not None:
        for s in species:
            if s not in atomic_numbers:
                raise ValueError(f"species: unknown element symbol {s!r}")
    src = _Lines(path)
    try:
        while (line := src.next()) is not None:
            if _keyword(line)[0] != "begin_cfg":
                raise src.error(f"expected BEGIN_CFG, found {line!r}")
            yield _read_block(src, species, src.lineno)
    finally:
        src.close()


def read_cfg(path: str | os.PathLike, species: Sequence[str] | None = None) -> list[Atoms]:
    """All configurations of an MLIP ``.cfg`` file (see :func:`iter_cfg`)."""
    return list(iter_cfg(path, species))


def _types(atoms: Atoms, species: Sequence[str] | None, index: int) -> np.ndarray:
    mtp_type = atoms.arrays.get("mtp_type")
    if species is None:
        if mtp_type is None:
            raise ValueError(f"configuration {index}: no species list given and no "
                             "'mtp_type' array to tell the MLIP types of "
                             f"{sorted(set(atoms.get_chemical_symbols()))}")
        return np.asarray(mtp_type, dtype=int)
    lookup = {s: t for t, s in enumerate(species)}
    types = np.empty(len(atoms), dtype=int)
    for i, (z, sym) in enumerate(zip(atoms.numbers, atoms.get_chemical_symbols())):
        if sym in lookup:
            types[i] = lookup[sym]
        elif z == 0 and mtp_type is not None:  # read without species: keep its type
            types[i] = mtp_type[i]
        else:
            raise ValueError(f"configuration {index}: element {sym!r} (atom {i}) is not "
                             f"in species {list(species)}")
    return types


def _feature_text(key, value) -> str | None:
    """A 'Feature key value' line for a scalar info entry, None for anything else."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (str, int, float)):  # bool is an int
        return None
    key = str(key)
    if not key or any(c.isspace() for c in key):
        return None
    text = repr(value) if isinstance(value, float) else str(value)
    if "\n" in text or "\r" in text:
        return None
    return f" Feature   {key}\t{text}\n"


def _format_block(atoms: Atoms, types: np.ndarray) -> str:
    results = atoms.calc.results if atoms.calc is not None else {}
    out = ["BEGIN_CFG\n", " Size\n", f"    {len(atoms)}\n"]
    if atoms.pbc.any():
        out.append(" Supercell\n")
        for row in np.asarray(atoms.cell):
            out.append("    " + " ".join(_NUM % v for v in row) + "\n")
    forces = results.get("forces")
    extra = [k for k in _EXTRA_COLS if k in atoms.arrays]
    header = ["id", "type", *_POS_COLS]
    if forces is not None:
        header += list(_FORCE_COLS)
    header += extra
    out.append(" AtomData:  " + " ".join(header) + "\n")
    positions = atoms.positions
    for i in range(len(atoms)):
        fields = [str(i + 1), str(int(types[i]))]
        fields += [_NUM % v for v in positions[i]]
        if forces is not None:
            fields += [_NUM % v for v in forces[i]]
        fields += [_NUM % atoms.arrays[k][i] for k in extra]
        out.append("    " + " ".join(fields) + "\n")
    if results.get("energy") is not None:
        out += [" Energy\n", f"    {_NUM % results['energy']}\n"]
    stress = results.get("stress")
    if stress is not None:
        if not atoms.pbc.all():
            raise ValueError("stress given for a configuration that is not periodic in "
                             "all three directions")
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        plus = -stress * atoms.get_volume()  # virial in eV
        out.append(" PlusStress:  " + " ".join(_VOIGT_ORDER) + "\n")
        out.append("    " + " ".join(_NUM % v for v in plus) + "\n")
    for key, value in atoms.info.items():
        line = _feature_text(key, value)
        if line is not None:
            out.append(line)
    out.append("END_CFG\n\n")
    return "".join(out)


def write_cfg(path: str | os.PathLike, images: Atoms | Iterable[Atoms],
              species: Sequence[str] | None = None) -> None:
    """Write configurations in the MLIP-2 ``.cfg`` format, at full double precision.

    The MLIP type of an atom is ``species.index(symbol)``; without ``species`` it is
    ``atoms.arrays["mtp_type"]``.  Energy, forces and stress come from ``atoms.calc.results``;
    the stress is written as ``PlusStress = -stress * volume``.  Scalar ``atoms.info``
    entries are written as ``Feature`` lines.
    """
    if isinstance(images, Atoms):
        images = [images]
    blocks = []
    for index, atoms in enumerate(images):
        try:
            blocks.append(_format_block(atoms, _types(atoms, species, index)))
        except ValueError as err:
            if str(err).startswith("configuration"):
                raise ValueError(f"{path}: {err}") from None
            raise ValueError(f"{path}: configuration {index}: {err}") from None
    Path(path).write_text("".join(blocks))


# ---- fast path: whole files as joined arrays (`Frames`), no Atoms per configuration ---------

_ATOM_COLUMNS = ("id type cartes_x cartes_y cartes_z", "id type cartes_x cartes_y cartes_z fx fy fz")
_PLUS_STRESS = "PlusStress:  xx yy zz yz xz xy"


def read_cfg_frames(path: str | os.PathLike,
                    species: Sequence[str] | None = None) -> Frames | None:
    """The configurations of a `.cfg` file as `Frames`, parsed in one pass: the atom lines
    of the whole file are read by one numpy call. Handles the blocks MLIP-2 writes (Size,
    Supercell, AtomData with id, type, cartes_x/y/z and optionally fx fy fz, Energy,
    PlusStress, Feature); returns None for anything else (the old variant, direct
    coordinates, extra columns, other sections, malformed input), which `read_cfg` then
    reads and, for malformed input, reports by file and line. Same values as `read_cfg`."""
    if species is not None:
        for sp in species:
            if sp not in atomic_numbers:
                raise ValueError(f"species: unknown element symbol {sp!r}")
    lines = Path(path).read_text().split("\n")
    n_lines = len(lines)
    sizes, cells, pbcs, energies, stresses, infos, chunks = [], [], [], [], [], [], []
    with_forces = None
    i = 0
    try:
        while True:
            while i < n_lines and not lines[i].strip():
                i += 1
            if i == n_lines:
                break
            if lines[i].strip() != "BEGIN_CFG" or lines[i + 1].strip() != "Size":
                return None
            n = int(lines[i + 2])
            i += 3
            cell = np.zeros((3, 3))
            pbc = [False, False, False]
            if lines[i].strip() == "Supercell":
                i += 1
                for k in range(3):
                    row = lines[i].split()
                    if len(row) != 3 or row[0][0].isalpha():
                        break
                    cell[k] = [float(v) for v in row]
                    pbc[k] = True
                    i += 1
                if not pbc[0]:
                    return None
            head, _, columns = lines[i].strip().partition(" ")
            columns = " ".join(columns.split())
            if head != "AtomData:" or columns not in _ATOM_COLUMNS:
                return None
            forces_here = columns == _ATOM_COLUMNS[1]
            if with_forces is None:
                with_forces = forces_here
            elif with_forces != forces_here:
                return None
            chunks.append("\n".join(lines[i + 1:i + 1 + n]))
            i += 1 + n
            energy = np.nan
            if lines[i].strip() == "Energy":
                energy = float(lines[i + 1])
                i += 2
            plus = None
            if lines[i].strip() == _PLUS_STRESS:
                plus = [float(v) for v in lines[i + 1].split()]
                if len(plus) != 6:
                    return None
                i += 2
            info = {}
            while lines[i].lstrip().startswith("Feature"):
                fields = lines[i].strip().split(None, 2)
                if fields[0] != "Feature" or len(fields) < 2:
                    return None
                info[fields[1]] = fields[2] if len(fields) > 2 else ""
                i += 1
            if lines[i].strip() != "END_CFG":
                return None
            i += 1
            sizes.append(n)
            cells.append(cell)
            pbcs.append(pbc)
            energies.append(energy)
            stresses.append(plus)
            infos.append(info)
    except (IndexError, ValueError):
        return None
    n_cols = 8 if with_forces else 5
    atom_start = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=atom_start[1:])
    n_atoms = int(atom_start[-1])
    try:
        data = np.fromstring("\n".join(chunks), sep=" ") if n_atoms else np.zeros(0)
    except ValueError:
        return None
    if data.size != n_atoms * n_cols:
        return None
    data = data.reshape(n_atoms, n_cols)
    local = np.arange(n_atoms) - np.repeat(atom_start[:-1], sizes)
    types = data[:, 1].astype(np.int64)
    if not (np.array_equal(data[:, 0], local + 1) and np.array_equal(types, data[:, 1])):
        return None
    if len(types) and (types.min() < 0 or (species is not None and types.max() >= len(species))):
        return None
    numbers = np.zeros(n_atoms, dtype=np.int64)
    if species is not None:
        numbers = np.array([atomic_numbers[sp] for sp in species], dtype=np.int64)[types]
    cells = np.array(cells).reshape(-1, 3, 3)
    pbcs = np.array(pbcs, dtype=bool).reshape(-1, 3)
    energy = np.array(energies)
    stress = None
    if any(p is not None for p in stresses):
        if not all(pbcs[c].all() for c, p in enumerate(stresses) if p is not None):
            return None                  # read_cfg says which configuration
        stress = np.array([np.full(6, np.nan) if p is None else p for p in stresses])
        stress /= -np.abs(np.linalg.det(cells))[:, None]
    return Frames(atom_start, numbers, np.ascontiguousarray(data[:, 2:5]), cells, pbcs, types,
                  None if np.isnan(energy).all() else energy,
                  np.ascontiguousarray(data[:, 5:8]) if with_forces else None, stress, None, infos)


_ATOM_LINE = "    %d %d %.16e %.16e %.16e"
_FORCE_FIELDS = " %.16e %.16e %.16e"


def frame_types(frames: Frames, species: Sequence[str] | None, where) -> np.ndarray:
    """MLIP types of Frames' atoms: by `species` from the atomic numbers (atoms of number 0
    keep their own `types`), else its `types`; a ValueError names the configuration."""
    if species is None:
        if frames.types is None:
            raise ValueError(f"{where}: configuration 0: no species list given and no "
                             "MLIP types to tell the species apart")
        return frames.types
    table = np.full(119, -1, dtype=np.int64)
    for t, sp in enumerate(species):
        table[atomic_numbers[sp]] = t
    numbers = frames.numbers
    types = table[np.clip(numbers, 0, 118)]
    if frames.types is not None:
        types = np.where(numbers == 0, frames.types, types)
    bad = np.flatnonzero((types < 0) | (numbers < 0) | (numbers > 118))
    if len(bad):
        c = int(np.searchsorted(frames.atom_start, bad[0], side="right") - 1)
        from ase.data import chemical_symbols
        z = int(numbers[bad[0]])
        name = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
        raise ValueError(f"{where}: configuration {c}: element {name!r} (atom "
                         f"{bad[0] - frames.atom_start[c]}) is not in species {list(species)}")
    return types


def write_cfg_frames(path: str | os.PathLike, frames: Frames,
                     species: Sequence[str] | None = None) -> None:
    """`write_cfg` of Frames, byte for byte the same text, formatted one configuration per
    string operation. Labels: frames.energy, forces, stress (rows of NaN: none)."""
    types = frame_types(frames, species, path)
    start = frames.atom_start
    n_atoms = int(start[-1])
    forces = frames.forces
    n_cols = 5 if forces is None else 8
    data = np.empty((n_atoms, n_cols))
    data[:, 0] = np.arange(n_atoms) - np.repeat(start[:-1], np.diff(start)) + 1
    data[:, 1] = types
    data[:, 2:5] = frames.positions
    if forces is not None:
        data[:, 5:8] = forces
    flat = data.ravel().tolist()
    line = _ATOM_LINE + ("" if forces is None else _FORCE_FIELDS) + "\n"
    header = " AtomData:  " + " ".join(["id", "type", *_POS_COLS]
                                       + ([] if forces is None else list(_FORCE_COLS))) + "\n"
    formats = {}
    energy = frames.energy
    plus = None
    if frames.stress is not None:
        bad = np.flatnonzero(~np.isnan(frames.stress).any(axis=1) & ~frames.pbc.all(axis=1))
        if len(bad):
            raise ValueError(f"{path}: configuration {bad[0]}: stress given for a configuration "
                             "that is not periodic in all three directions")
        plus = (-frames.stress * np.abs(np.linalg.det(frames.cells))[:, None]).tolist()
    cells = frames.cells.tolist()
    pbc_any = frames.pbc.any(axis=1).tolist()
    out = []
    for c in range(len(frames)):
        a0, a1 = int(start[c]), int(start[c + 1])
        n = a1 - a0
        out.append(f"BEGIN_CFG\n Size\n    {n}\n")
        if pbc_any[c]:
            out.append(" Supercell\n" + "".join("    %.16e %.16e %.16e\n" % tuple(row)
                                                 for row in cells[c]))
        out.append(header)
        fmt = formats.get(n)
        if fmt is None:
            fmt = formats[n] = line * n
        out.append(fmt % tuple(flat[a0 * n_cols:a1 * n_cols]))
        if energy is not None and not np.isnan(energy[c]):
            out.append(" Energy\n    %.16e\n" % energy[c])
        if plus is not None and plus[c][0] == plus[c][0]:          # (NaN: none)
            out.append(" PlusStress:  xx yy zz yz xz xy\n    %.16e %.16e %.16e %.16e %.16e %.16e\n"
                       % tuple(plus[c]))
        if frames.info:
            for key, value in frames.info[c].items():
                text = _feature_text(key, value)
                if text is not None:
                    out.append(text)
        out.append("END_CFG\n\n")
    Path(path).write_text("".join(out))


def _is_cfg(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".cfg"


def convert(inp: str | os.PathLike, out: str | os.PathLike,
            species: Sequence[str] | None = None) -> int:
    """Convert between ``.cfg`` and anything ASE reads/writes (chosen by file extension).

    Returns the number of configurations converted.
    """
    if _is_cfg(inp):
        images = read_cfg(inp, species)
    else:
        from ase.io import read
        images = read(inp, ":")
    if _is_cfg(out):
        write_cfg(out, images, species)
    else:
        from ase.io import write
        fmt = "extxyz" if Path(out).suffix.lower() in (".xyz", ".extxyz") else None
        write(out, images, format=fmt)
    return len(images)
