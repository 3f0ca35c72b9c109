"""The layers stay apart: the library imports without Snakemake, the workflow imports the
installed library without path hacks, and the library has no workflow package."""
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import mtplib

ROOT = Path(__file__).resolve().parents[1]


def test_library_imports_without_snakemake():
    modules = sorted(m.name for m in pkgutil.walk_packages(mtplib.__path__, "mtplib.")
                     if not m.name.endswith("__main__"))
    code = ("import sys; sys.modules['snakemake'] = None\n"   # `import snakemake` now fails
            f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(len([m for m in sys.modules if m.startswith('mtplib')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) >= len(modules) > 20


def test_no_workflow_package_and_no_snakemake_in_the_library():
    assert not (ROOT / "mtplib" / "workflow").exists()
    for path in (ROOT / "mtplib").rglob("*.py"):
        assert not re.search(r"^\s*(import|from) snakemake", path.read_text(), re.M), path


def test_workflow_files_have_no_path_hacks():
    files = [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk"), *(ROOT / "scripts").rglob("*.py")]
    for path in files:
        text = path.read_text()
        assert "sys.path.insert" not in text and "sys.path.append" not in text, path
        assert "PYTHONPATH" not in text, path
        assert "tests." not in text, path


def test_importing_mtplib_loads_no_kernels():
    """The Snakefile and the command line's start-up import mtplib cheaply: numba and the
    kernels load with the first module that needs them."""
    code = ("import sys, mtplib, mtplib.labeling.registry; "
            "print(int('numba' in sys.modules), int('mtplib.kernels' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.split() == ["0", "0"]
