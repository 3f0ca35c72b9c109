"""MLIP-2 `.mtp` files: lossless round trip, untrained files, clear errors."""
import numpy as np
import pytest
from conftest import random_potential, shared_path

from mtplib import MTPotential
from mtplib.io.mtp import MTPFormatError


def test_roundtrip_is_lossless(tmp_path):
    pot = random_potential(12, ["Cu", "Au", "Pd"], seed=4)
    pot.scaling = 0.731
    pot.save(tmp_path / "a.mtp")
    back = MTPotential.load(tmp_path / "a.mtp")
    for name in ("radial_coeffs", "species_coeffs", "moment_coeffs", "alpha_index_basic",
                 "alpha_index_times", "alpha_moment_mapping"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pot, name))
    for name in ("scaling", "min_dist", "max_dist", "species", "alpha_moments_count"):
        assert getattr(back, name) == getattr(pot, name)
    back.save(tmp_path / "b.mtp")
    assert (tmp_path / "a.mtp").read_text() == (tmp_path / "b.mtp").read_text()


def test_published_file_roundtrips_to_the_same_numbers(tmp_path):
    path = shared_path("data", "mlearn", "Li", "published.mtp")
    pot = MTPotential.load(path)
    pot.save(tmp_path / "li.mtp")
    back = MTPotential.load(tmp_path / "li.mtp")
    np.testing.assert_array_equal(back.get_parameters(), pot.get_parameters())
    assert back.scaling == pot.scaling


def test_scaling_inside_radial_block_multiplies(tmp_path):
    pot = random_potential(4, ["Cu"], seed=1)
    pot.scaling = 2.0
    pot.save(tmp_path / "a.mtp")
    text = (tmp_path / "a.mtp").read_text().replace("\tmin_dist", "\tscaling = 0.5\n\tmin_dist")
    (tmp_path / "b.mtp").write_text(text)
    assert MTPotential.load(tmp_path / "b.mtp").scaling == 1.0


def _broken(tmp_path, old, new):
    pot = random_potential(8, ["Cu", "Au"], seed=0)
    pot.save(tmp_path / "good.mtp")
    text = (tmp_path / "good.mtp").read_text()
    assert old in text
    (tmp_path / "bad.mtp").write_text(text.replace(old, new, 1))
    return tmp_path / "bad.mtp"


@pytest.mark.parametrize("old,new,message", [
    ("alpha_index_basic_count = ", "alpha_index_basic_count = 1", "'alpha_index_basic' has .* entries but alpha_index_basic_count"),
    ("radial_basis_type = RBChebyshev", "radial_basis_type = RBShapeev", "unknown radial_basis_type 'RBShapeev'"),
    ("alpha_scalar_moments = ", "alpha_scalar_moments = 7", "'alpha_moment_mapping' has .* entries but alpha_scalar_moments"),
    ("species_count = 2", "species_count = 3", "radial_coeffs block '0-2' is missing"),
    ("\tmax_dist", "\tmaxdist", "missing key 'max_dist'"),
    ("version = 1.1.0", "version = 2.0", "unsupported version"),
])
def test_inconsistent_files_get_clear_errors(tmp_path, old, new, message):
    bad = _broken(tmp_path, old, new)
    with pytest.raises(MTPFormatError, match=message) as info:
        MTPotential.load(bad)
    assert str(bad) in str(info.value)


def test_truncated_file_names_the_missing_key(tmp_path):
    pot = random_potential(8, ["Cu"], seed=0)
    pot.save(tmp_path / "a.mtp")
    lines = (tmp_path / "a.mtp").read_text().splitlines()
    cut = next(n for n, line in enumerate(lines) if line.startswith("alpha_index_times_count"))
    (tmp_path / "t.mtp").write_text("\n".join(lines[:cut]) + "\n")
    with pytest.raises(MTPFormatError, match=r"t\.mtp: missing key 'alpha_index_times'"):
        MTPotential.load(tmp_path / "t.mtp")


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(MTPFormatError, match="cannot read the potential file"):
        MTPotential.load(tmp_path / "none.mtp")
    (tmp_path / "g.mtp").write_text("hello\n")
    with pytest.raises(MTPFormatError, match="g.mtp:1: not an MTP file"):
        MTPotential.load(tmp_path / "g.mtp")
    bad = _broken(tmp_path, "min_dist = ", "min_dist = abc")
    with pytest.raises(MTPFormatError, match=r"bad\.mtp:\d+: 'min_dist' must be a float"):
        MTPotential.load(bad)
