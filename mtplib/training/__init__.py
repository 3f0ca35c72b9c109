"""Training MTPs: loss (eq. 7), gradients, VarPro + L-BFGS optimiser, seed scan, MPI reduction."""
from .data import SCALINGS, TrainingDataError, apply_forces_cap, config_weights, prepare, train_test_split
from .crossval import kfold_parts, linear_cross_validation
from .optimize import DEFAULT_WEIGHTS, fit, solve_linear
from .scan import committee_evaluate, fit_seed, gather, load_committee, scan, seeds_of

__all__ = ["fit", "train_test_split", "scan", "fit_seed", "gather", "seeds_of", "committee_evaluate", "load_committee",
           "prepare", "apply_forces_cap", "config_weights", "solve_linear", "SCALINGS",
           "DEFAULT_WEIGHTS", "TrainingDataError", "kfold_parts", "linear_cross_validation"]
