"""Schema tests: defaults, documentation, and errors that name the key."""

import copy
from pathlib import Path

import pytest
import yaml

from scripts.mtpflow.settings import (SCHEMA_PATH, ConfigError, check_config, load_config,
                                      validate_config)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]


def _load(path):
    return yaml.safe_load(Path(path).read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    for phase in config["phases"].values():
        assert set(phase["displacements"]) == {"supercells", "structures_per_supercell", "rattle", "cell_strain", "seed",
                                                  "min_distance_fraction"}
    assert config["reference"]["isolated_box"] > 0
    assert config["fit"]["weights"]["stress"] >= 0


def test_defaults_are_filled():
    config = validate_config({"elements": ["Cu"], "phases": {"Cu": {"bulk": {"name": "Cu"}}}})
    assert config["reference"]["name"] == "emt"
    assert config["reference"]["mpi_tasks"] == 1 and config["reference"]["mpi_launcher"] == "mpiexec"
    assert config["reference"]["isolated_box"] == 12.0
    assert config["fit"]["weights"] == {"energy": 1.0, "forces": 0.01, "stress": 0.001}
    assert config["fit"]["test_fraction"] == 0.2 and config["fit"]["metric"] == "test.forces.rmse"
    assert config["active_learning"]["gamma_select"] == 2.0 and config["active_learning"]["gamma_break"] == 10.0
    assert config["active_learning"]["committee_criterion"] == {
        "enabled": False, "threshold": 0.1, "break_threshold": None, "only": False}
    assert config["validation"]["adf"] == {"cutoffs": None, "bins": 180}
    assert config["phases"]["Cu"]["displacements"]["structures_per_supercell"] == 5


def _resolve(ref, defs):
    """The subschema of a local $ref: '#/$defs/name' or a pointer into one."""
    parts = ref.split("/")[2:]
    sub = defs[parts[0]]
    for part in parts[1:]:
        sub = sub[part]
    return sub


def _walk(schema, path, defs):
    """Yield (path, subschema, exempt) for every property of every object in the schema."""
    if "$ref" in schema:
        schema = {**_resolve(schema["$ref"], defs), **{k: v for k, v in schema.items() if k != "$ref"}}
    alternatives = {r for branch in schema.get("oneOf", []) for r in branch.get("required", [])}
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", sub, name in required or name in alternatives
        yield from _walk(sub, f"{path}.{name}", defs)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], f"{path}[]", defs)


def test_every_key_has_description_and_default():
    schema = _load(SCHEMA_PATH)
    seen = 0
    for path, sub, exempt in _walk(schema, "config", schema["$defs"]):
        seen += 1
        assert "description" in sub or "$ref" in sub, f"{path} has no description"
        assert exempt or "default" in sub, f"{path} has no default"
    assert seen > 100


def test_every_object_forbids_unknown_keys():
    schema = _load(SCHEMA_PATH)
    free_form = {"config.phases", "config.reference.kwargs", "config.active_learning.scenarios[].start.amorphous.composition",
                 "config.active_learning.scenarios[].start.amorphous.pair_min_distance",
                 "config.validation.adf.cutoffs", "config.validation.coordination_cutoffs",
                 "config.validation.scenarios[].amorphous.composition",
                 "config.validation.scenarios[].amorphous.pair_min_distance",
                 "config.validation.scenarios[].reference.amorphous.composition",
                 "config.validation.scenarios[].reference.amorphous.pair_min_distance"}
    for path, sub, _ in _walk(schema, "config", schema["$defs"]):
        if "$ref" in sub:
            sub = _resolve(sub["$ref"], schema["$defs"])
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, f"{path} accepts unknown keys"
        elif "object" in str(sub.get("type")) and path not in free_form:
            pytest.fail(f"{path} is an object without properties")


def _base():
    return _load(ROOT / "config" / "examples" / "cuau_tiny.yaml")


def test_misspelt_key_is_named():
    config = _base()
    config["reference"]["chunk_sise"] = 3
    with pytest.raises(ConfigError, match=r"'chunk_sise' was unexpected") as err:
        validate_config(config)
    assert "reference" in str(err.value)


def test_misspelt_nested_key_is_named():
    config = _base()
    config["phases"]["Cu"]["displacements"]["ratle"] = 0.1
    with pytest.raises(ConfigError, match=r"'ratle' was unexpected"):
        validate_config(config)


def test_wrong_type_is_named():
    config = _base()
    config["reference"]["mpi_tasks"] = "two"
    with pytest.raises(ConfigError, match=r"'two' is not of type 'integer'") as err:
        validate_config(config)
    assert "mpi_tasks" in str(err.value)


def test_odd_level_is_rejected():
    config = _base()
    config["mtp"]["level"] = 7
    with pytest.raises(ConfigError, match=r"7 is not a multiple of 2") as err:
        validate_config(config)
    assert "level" in str(err.value)


def test_phase_needs_exactly_one_source():
    config = _base()
    config["phases"]["Cu"]["file"] = "Cu.cif"
    with pytest.raises(ConfigError, match=r"phases.*Cu|Cu.*phases") as err:
        validate_config(config)
    assert "exactly one of file, bulk, crystal" in str(err.value)


def test_unknown_reference_name_is_rejected():
    config = _base()
    config["reference"]["name"] = "emt2"
    with pytest.raises(ConfigError, match=r"'emt2'") as err:
        validate_config(config)
    assert "name" in str(err.value)


def test_scenario_phase_must_exist():
    config = validate_config(_base())
    config = copy.deepcopy(config)
    config["active_learning"]["scenarios"] = [{"name": "md", "start": {"phase": "Ag"}}]
    with pytest.raises(ValueError, match=r"active_learning\.scenarios\[md\]\.start\.phase.*'Ag'"):
        check_config(config)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["validation"]["scenarios"].append({"name": "v", "phase": "Ag"}),
     r"'validation\.scenarios\[v\]\.phase': unknown phase 'Ag'"),
    (lambda c: c["active_learning"]["scenarios"].append({"name": "md", "start": {"phases": ["Cu", "Ag"]}}),
     r"'active_learning\.scenarios\[md\]\.start\.phases': unknown phase 'Ag'"),
    (lambda c: c["active_learning"].update(gamma_select=12.0, gamma_break=10.0),
     r"'active_learning\.gamma_select' = 12\.0 .*gamma_select must not be larger"),
    (lambda c: c["mtp"].update(min_dist=5.5, max_dist=5.0),
     r"'mtp\.min_dist' = 5\.5 .*min_dist must be smaller than max_dist"),
    (lambda c: c["phases"].update(Ag={"bulk": {"name": "Ag"}}),
     r"'phases\.Ag': species \['Ag'\] are not in config key 'elements'"),
    (lambda c: c["validation"].update(valid_data="no/such/file.extxyz"),
     r"'validation\.valid_data': no such file no/such/file\.extxyz"),
])
def test_cross_key_errors_name_the_key(change, message):
    """Mistakes that the schema cannot see are found before any job runs (Settings)."""
    from scripts.mtpflow.settings import ConfigError, Settings
    config = validate_config(_base())
    change(config)
    with pytest.raises(ConfigError, match=message):
        Settings.from_config(validate_config(config))
