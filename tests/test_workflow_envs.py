"""The conda environments stay in sync with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _conda_names(path: Path) -> set:
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(d) for d in dep.get("pip", [])}
        else:
            names.add(_name(dep))
    return names


@pytest.mark.parametrize("env", ["mtp.yaml", "xtb.yaml", "dft.yaml"])
def test_core_dependencies_are_in_every_env(env):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(d) for d in project["dependencies"]}
    missing = core - _conda_names(ROOT / "envs" / env)
    assert not missing, f"envs/{env} lacks {sorted(missing)} from pyproject.toml dependencies"


def test_extras_envs_add_their_calculator():
    assert "tblite-python" in _conda_names(ROOT / "envs" / "xtb.yaml")
    assert "gpaw" in _conda_names(ROOT / "envs" / "dft.yaml")


def test_every_rule_has_a_conda_env():
    """Rules run in the core env, or (those that call the reference code) in the env that the
    code's registry entry names."""
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        n_rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))
        assert n_rules == text.count('"../envs/mtp.yaml"') + text.count("REFERENCE_ENV\n"), smk.name


def test_each_registry_code_names_an_existing_env():
    from mtplib.labeling.registry import REGISTRY
    for code in REGISTRY.values():
        assert (ROOT / "envs" / f"{code.conda_env}.yaml").is_file(), code.name
    assert REGISTRY["tblite"].conda_env == "xtb" and REGISTRY["gpaw"].conda_env == "dft"
