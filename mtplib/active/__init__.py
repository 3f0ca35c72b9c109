"""Active learning: maxvol, the extrapolation grade, selection, committee, MD and relaxation drivers."""
from .committee import Committee, force_std
from .grade import (ActiveSet, ActiveSetError, SelectionWeights, evaluate_with_gradients,
                    jacobian_rows, load_or_build, potential_fingerprint, state_path_for)
from .maxvol import MaxvolState, UnderdeterminedWarning, maxvol
from .criteria import CommitteeSpread, Criterion, ExtrapolationGrade
from .md import ActiveCalculator, RunResult, Thresholds, run_md
from .pool import PoolSettings, enumerate_pool
from .relax import Relaxation, relax_pool, relax_pool_with_reference, relax_with_reference, run_relax
from .relax_learning import RelaxationLearning, learn_by_relaxation
from .select import canonical_order, select_add
from .sparsify import Sparsification, sparsify

__all__ = ["ActiveSet", "ActiveSetError", "ActiveCalculator", "Committee", "CommitteeSpread",
           "Criterion", "ExtrapolationGrade", "MaxvolState", "RunResult", "SelectionWeights",
           "Sparsification",
           "Thresholds", "UnderdeterminedWarning", "canonical_order",
           "evaluate_with_gradients", "force_std", "jacobian_rows", "load_or_build", "maxvol",
           "potential_fingerprint", "run_md", "run_relax", "select_add", "sparsify",
           "state_path_for", "PoolSettings", "enumerate_pool", "Relaxation", "relax_pool",
           "relax_pool_with_reference", "relax_with_reference", "RelaxationLearning",
           "learn_by_relaxation"]
