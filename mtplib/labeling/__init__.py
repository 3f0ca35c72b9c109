"""Labelling with reference codes: the registry of codes, resumable labelling, isolated-atom
energies and extxyz frame IO."""
from .frames import (append_frame, label_summary, read_complete_frames, read_frames,
                     write_frames_atomic)
from .isolated import isolated_atom, isolated_energies
from .label import (TIMEOUT_REASON, LabelTimeout, NonFiniteResult, ReferenceFailed,
                    RetryingCalculator, compute_labels, label_structures, mpi_world,
                    retry_failures, run_mpi_safe)
from .registry import (REGISTRY, ReferenceCode, calculator_factory, get_code, make_calculator,
                       register, resolve, runs_python_under_mpi)

__all__ = ["REGISTRY", "TIMEOUT_REASON", "LabelTimeout", "NonFiniteResult", "ReferenceFailed",
           "RetryingCalculator", "ReferenceCode", "append_frame", "calculator_factory",
           "compute_labels", "get_code", "isolated_atom", "isolated_energies", "label_structures",
           "label_summary", "make_calculator", "mpi_world", "read_complete_frames", "read_frames",
           "register", "resolve", "retry_failures", "run_mpi_safe", "runs_python_under_mpi", "write_frames_atomic"]
