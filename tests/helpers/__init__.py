"""Test-only helpers (reference calculators used through 'module:Class')."""
