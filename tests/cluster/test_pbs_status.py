"""profiles/pbs/status.py maps qstat output to running/success/failed (no PBS server needed)."""

import importlib.util
from pathlib import Path

import pytest

STATUS = Path(__file__).resolve().parents[2] / "profiles" / "pbs" / "status.py"
spec = importlib.util.spec_from_file_location("pbs_status", STATUS)
pbs_status = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pbs_status)


@pytest.mark.parametrize(
    "qstat, expected",
    [
        ("Job Id: 1.srv\n    job_state = Q\n", "running"),
        ("Job Id: 1.srv\n    job_state = R\n", "running"),
        ("Job Id: 1.srv\n    job_state = F\n    Exit_status = 0\n", "success"),  # PBS Pro
        ("Job Id: 1.srv\n    job_state = F\n    Exit_status = 271\n", "failed"),  # qdel'd
        ("Job Id: 1.srv\n    job_state = C\n    exit_status = 0\n", "success"),  # Torque
        ("Job Id: 1.srv\n    job_state = C\n    exit_status = -11\n", "failed"),
        ("Job Id: 1.srv\n    job_state = F\n", "failed"),  # finished without a code
    ],
)
def test_status_from_qstat(qstat, expected):
    assert pbs_status.parse(qstat) == expected


def test_status_without_qstat(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qstat anywhere
    assert pbs_status.main("42.srv") == 0
    out, err = capsys.readouterr()
    assert out.strip() == "failed"
    assert "qstat cannot be run" in err


def test_status_with_fake_qstat(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "qstat"
    fake.write_text("#!/bin/sh\nprintf 'Job Id: %s\\n    job_state = F\\n    Exit_status = 0\\n' \"$2\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    pbs_status.main("7.srv")
    assert capsys.readouterr().out.strip() == "success"
