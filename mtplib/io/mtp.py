"""MLIP-2's `.mtp` potential format, version 1.1.0: read and write.

The layout (MLIP-2 `mtpr.cpp`, `MLMTPR::Load`)::

    MTP
    version = 1.1.0
    potential_name = MTP1m
    scaling = 1.0e+00                 (optional; may also sit in the radial block)
    species_count = 2
    potential_tag = ...               (free text; we keep `species: Cu Au` here)
    radial_basis_type = RBChebyshev   (or RBChebyshev_repuls: MLIP-2's repulsive core below min_dist)
        min_dist = ...  max_dist = ...  radial_basis_size = ...  radial_funcs_count = ...
        radial_coeffs                 (absent in an untrained potential)
            0-0
                {c_0 ... c_{size-1}}  (one line per radial function)
    alpha_moments_count = ...
    alpha_index_basic_count = ...   alpha_index_basic = {{mu, a, b, c}, ...}
    alpha_index_times_count = ...   alpha_index_times = {{i1, i2, mult, k}, ...}
    alpha_scalar_moments = ...      alpha_moment_mapping = {...}
    species_coeffs = {...}            (absent in an untrained potential)
    moment_coeffs = {...}

Errors name the file, the line and the key at fault (`MTPFormatError`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SPECIES_TAG = "species:"
# the radial bases mtplib evaluates (MLIP-2's `radial_basis.h`; RBShapeev and RBTaylor are not)
RADIAL_BASIS_TYPES = ("RBChebyshev", "RBChebyshev_repuls")


class MTPFormatError(ValueError):
    """A malformed `.mtp` file; the message names the file, line and key."""


def _numbers(text, where, kind=float):
    body = text.replace("{", " ").replace("}", " ").replace(",", " ").split()
    try:
        return [kind(tok) for tok in body]
    except ValueError as exc:
        raise MTPFormatError(f"{where}: expected numbers, got {text.strip()[:60]!r}") from exc


def read_mtp(path):
    """Read a `.mtp` file into a dict of plain values and numpy arrays."""
    path = Path(path)
    try:
        raw = path.read_text().splitlines()
    except OSError as exc:
        raise MTPFormatError(f"{path}: cannot read the potential file ({exc.strerror})") from exc
    lines = [(n + 1, line.strip()) for n, line in enumerate(raw)]
    lines = [(n, line) for n, line in lines if line]
    if not lines or lines[0][1] != "MTP":
        raise MTPFormatError(f"{path}:1: not an MTP file (the first line must be 'MTP')")

    fields: dict[str, tuple[int, str]] = {}
    radial_blocks: dict[tuple[int, int], list[tuple[int, str]]] = {}
    pos = 1
    current_pair = None
    in_radial_coeffs = False
    while pos < len(lines):
        lineno, line = lines[pos]
        pos += 1
        if in_radial_coeffs:
            pair = re.fullmatch(r"(\d+)\s*-\s*(\d+)", line)
            if pair:
                current_pair = (int(pair[1]), int(pair[2]))
                radial_blocks[current_pair] = []
                continue
            if line.startswith("{") and current_pair is not None:
                radial_blocks[current_pair].append((lineno, line))
                continue
            in_radial_coeffs = False
        if line == "radial_coeffs":
            in_radial_coeffs = True
            continue
        if "=" not in line:
            raise MTPFormatError(f"{path}:{lineno}: cannot parse {line[:60]!r} (expected 'key = value')")
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "scaling" and key in fields:
            # scaling may sit both at the top and in the radial block: they multiply
            try:
                value = repr(float(fields[key][1]) * float(value))
            except ValueError as exc:
                raise MTPFormatError(f"{path}:{lineno}: 'scaling' must be a number, got {value!r}") from exc
        fields[key] = (lineno, value)

    def need(key):
        if key not in fields:
            raise MTPFormatError(f"{path}: missing key '{key}'")
        return fields[key]

    def scalar(key, kind, default=None):
        if key not in fields and default is not None:
            return default
        lineno, value = need(key)
        try:
            return kind(value)
        except ValueError as exc:
            raise MTPFormatError(f"{path}:{lineno}: '{key}' must be a {kind.__name__}, got {value!r}") from exc

    def int_table(key, width, count_key):
        lineno, value = need(key)
        flat = _numbers(value, f"{path}:{lineno}: '{key}'", int)
        count = scalar(count_key, int)
        if len(flat) != width * count:
            raise MTPFormatError(
                f"{path}:{lineno}: '{key}' has {len(flat) / width:g} entries but {count_key} = {count}")
        return np.array(flat, dtype=np.int64).reshape(count, width)

    version = scalar("version", str)
    if version != "1.1.0":
        raise MTPFormatError(f"{path}:{fields['version'][0]}: unsupported version {version!r} (need 1.1.0)")
    rb_type = scalar("radial_basis_type", str)
    if rb_type not in RADIAL_BASIS_TYPES:
        raise MTPFormatError(
            f"{path}:{fields['radial_basis_type'][0]}: unknown radial_basis_type {rb_type!r} "
            f"(supported: {', '.join(RADIAL_BASIS_TYPES)})")
    scaling = scalar("scaling", float, 1.0)
    species_count = scalar("species_count", int)
    radial_basis_size = scalar("radial_basis_size", int)
    radial_funcs_count = scalar("radial_funcs_count", int)
    min_dist = scalar("min_dist", float)
    max_dist = scalar("max_dist", float)
    if not 0 <= min_dist < max_dist:
        raise MTPFormatError(f"{path}: need 0 <= min_dist < max_dist, got {min_dist}, {max_dist}")

    basic = int_table("alpha_index_basic", 4, "alpha_index_basic_count")
    times = int_table("alpha_index_times", 4, "alpha_index_times_count")
    lineno, value = need("alpha_moment_mapping")
    mapping = np.array(_numbers(value, f"{path}:{lineno}: 'alpha_moment_mapping'", int), dtype=np.int64)
    n_scalar = scalar("alpha_scalar_moments", int)
    if len(mapping) != n_scalar:
        raise MTPFormatError(f"{path}:{lineno}: 'alpha_moment_mapping' has {len(mapping)} entries "
                             f"but alpha_scalar_moments = {n_scalar}")
    moments_count = scalar("alpha_moments_count", int)
    if len(basic) and basic[:, 0].max() != radial_funcs_count - 1:
        raise MTPFormatError(f"{path}: alpha_index_basic uses {basic[:, 0].max() + 1} radial functions "
                             f"but radial_funcs_count = {radial_funcs_count}")
    if (basic < 0).any() or (times[:, :2] < 0).any() or (mapping < 0).any():
        raise MTPFormatError(f"{path}: negative index in alpha_index_basic/times/mapping")
    too_big = [(name, int(arr.max())) for name, arr in
               (("alpha_index_times", times[:, [0, 1, 3]]), ("alpha_moment_mapping", mapping)) if len(arr)]
    for name, top in too_big:
        if top >= moments_count:
            raise MTPFormatError(f"{path}: '{name}' refers to moment {top} but alpha_moments_count = {moments_count}")

    radial_coeffs = None
    if radial_blocks:
        radial_coeffs = np.zeros((species_count, species_count, radial_funcs_count, radial_basis_size))
        for s1 in range(species_count):
            for s2 in range(species_count):
                block = radial_blocks.get((s1, s2))
                if block is None:
                    raise MTPFormatError(f"{path}: radial_coeffs block '{s1}-{s2}' is missing")
                if len(block) != radial_funcs_count:
                    raise MTPFormatError(f"{path}:{block[0][0] if block else '?'}: radial_coeffs block "
                                         f"'{s1}-{s2}' has {len(block)} functions, expected {radial_funcs_count}")
                for mu, (ln, text) in enumerate(block):
                    row = _numbers(text, f"{path}:{ln}: radial_coeffs '{s1}-{s2}'")
                    if len(row) != radial_basis_size:
                        raise MTPFormatError(f"{path}:{ln}: radial_coeffs '{s1}-{s2}' has {len(row)} "
                                             f"values, expected radial_basis_size = {radial_basis_size}")
                    radial_coeffs[s1, s2, mu] = row

    species_coeffs = moment_coeffs = None
    if "species_coeffs" in fields:
        lineno, value = fields["species_coeffs"]
        species_coeffs = np.array(_numbers(value, f"{path}:{lineno}: 'species_coeffs'"))
        if len(species_coeffs) != species_count:
            raise MTPFormatError(f"{path}:{lineno}: 'species_coeffs' has {len(species_coeffs)} values "
                                 f"but species_count = {species_count}")
        lineno, value = need("moment_coeffs")
        moment_coeffs = np.array(_numbers(value, f"{path}:{lineno}: 'moment_coeffs'"))
        if len(moment_coeffs) != n_scalar:
            raise MTPFormatError(f"{path}:{lineno}: 'moment_coeffs' has {len(moment_coeffs)} values "
                                 f"but alpha_scalar_moments = {n_scalar}")

    tag = fields.get("potential_tag", (0, ""))[1]
    species = None
    if tag.startswith(SPECIES_TAG):
        species = tag[len(SPECIES_TAG):].split()
        if len(species) != species_count:
            species = None
    return dict(
        potential_name=fields.get("potential_name", (0, "MTP1m"))[1], potential_tag=tag,
        species=species, species_count=species_count, scaling=scaling,
        radial_basis_type=rb_type, min_dist=min_dist,
        max_dist=max_dist, radial_basis_size=radial_basis_size, radial_funcs_count=radial_funcs_count,
        radial_coeffs=radial_coeffs, alpha_moments_count=moments_count, alpha_index_basic=basic,
        alpha_index_times=times, alpha_moment_mapping=mapping, species_coeffs=species_coeffs,
        moment_coeffs=moment_coeffs)


def _fmt(x):
    return repr(float(x))


def _list(values, fmt=_fmt):
    return "{" + ", ".join(fmt(v) for v in values) + "}"


def _table(rows):
    return "{" + ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in rows) + "}"


def write_mtp(path, pot):
    """Write a potential (an object with the attributes returned by `read_mtp`)."""
    out = ["MTP", "version = 1.1.0", f"potential_name = {pot.potential_name or 'MTP1m'}",
           f"scaling = {_fmt(pot.scaling)}", f"species_count = {pot.species_count}"]
    tag = f"{SPECIES_TAG} {' '.join(pot.species)}" if pot.species else ""
    rb_type = getattr(pot, "radial_basis_type", "RBChebyshev")
    out += [f"potential_tag = {tag}", f"radial_basis_type = {rb_type}",
            f"\tmin_dist = {_fmt(pot.min_dist)}", f"\tmax_dist = {_fmt(pot.max_dist)}",
            f"\tradial_basis_size = {pot.radial_basis_size}",
            f"\tradial_funcs_count = {pot.radial_funcs_count}"]
    if pot.radial_coeffs is not None:
        out.append("\tradial_coeffs")
        for s1 in range(pot.species_count):
            for s2 in range(pot.species_count):
                out.append(f"\t\t{s1}-{s2}")
                out += ["\t\t\t" + _list(row) for row in pot.radial_coeffs[s1, s2]]
    out += [f"alpha_moments_count = {pot.alpha_moments_count}",
            f"alpha_index_basic_count = {len(pot.alpha_index_basic)}",
            f"alpha_index_basic = {_table(pot.alpha_index_basic)}",
            f"alpha_index_times_count = {len(pot.alpha_index_times)}",
            f"alpha_index_times = {_table(pot.alpha_index_times)}",
            f"alpha_scalar_moments = {len(pot.alpha_moment_mapping)}",
            f"alpha_moment_mapping = {_list(pot.alpha_moment_mapping, lambda v: str(int(v)))}"]
    if pot.species_coeffs is not None and pot.moment_coeffs is not None:
        out += [f"species_coeffs = {_list(pot.species_coeffs)}",
                f"moment_coeffs = {_list(pot.moment_coeffs)}"]
    Path(path).write_text("\n".join(out) + "\n")
