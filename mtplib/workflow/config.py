"""Helpers on the validated workflow configuration (see ``config/schema.yaml``)."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate ``config`` in place against the JSON schema, filling defaults.

    Uses ``snakemake.utils.validate`` (what the Snakefile uses), then the
    cross-key checks of :func:`check_config`. Returns ``config``.
    """
    from snakemake.utils import validate

    validate(config, str(schema_path))
    check_config(config)
    return config


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read a YAML config file and validate it (defaults filled)."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config, schema_path)


def check_config(config: dict) -> None:
    """Checks that a JSON schema cannot express; messages name the key."""
    elements = config["elements"]
    if len(set(elements)) != len(elements):
        raise ValueError(f"config key 'elements': duplicate symbols in {elements}")
    for name, phase in config["phases"].items():
        sources = [k for k in ("file", "bulk", "crystal") if k in phase]
        if len(sources) != 1:
            raise ValueError(
                f"config key 'phases.{name}': give exactly one of file, bulk, crystal "
                f"(got {sources or 'none'})"
            )
    for scenario in config["active_learning"]["scenarios"]:
        phase = scenario["start"].get("phase")
        if phase is not None and phase not in config["phases"]:
            raise ValueError(
                f"config key 'active_learning.scenarios[{scenario['name']}].start.phase': "
                f"unknown phase {phase!r}; known: {sorted(config['phases'])}"
            )


def n_structures(phase: dict) -> int:
    """Number of displaced structures stage 1 writes for one phase."""
    disp = phase["displacements"]
    return len(disp["supercells"]) * disp["structures_per_supercell"]


def n_chunks(phase: dict, chunk_size: int) -> int:
    """Number of labelling chunks of one phase (known before stage 1 runs)."""
    return max(1, math.ceil(n_structures(phase) / chunk_size))


def chunk_indices(phase: dict, chunk_size: int, chunk: int) -> range:
    """Structure indices (``info['index']``) labelled by chunk ``chunk``."""
    return chunk_indices_from(n_structures(phase), chunk_size, chunk)


def chunk_indices_from(n: int, chunk_size: int, chunk: int) -> range:
    """Indices of chunk ``chunk`` when ``n`` structures are cut in ``chunk_size`` pieces."""
    if not 0 <= chunk < max(1, math.ceil(n / chunk_size)):
        raise IndexError(f"chunk {chunk} out of range for {n} structures / chunk_size {chunk_size}")
    return range(chunk * chunk_size, min(n, (chunk + 1) * chunk_size))
