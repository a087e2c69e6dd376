"""The layout of lnsim: the import-linter layer contract holds and bites, and the docs' option table is the one
the spec's metadata makes."""

import pathlib
import re
import shutil
import subprocess
import sys

from lnsim.spec.core import options_markdown

ROOT = pathlib.Path(__file__).parents[1]
LINT = pathlib.Path(sys.executable).parent / "lint-imports"


def _lint(tree: pathlib.Path):
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": ""}, capture_output=True, text=True)


def _copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """The three packages as installed (lnsim, and rtl/ and testbenches/ under their package names)."""
    for src, name in (("lnsim", "lnsim"), ("rtl", "lnsim_rtl"), ("testbenches", "lnsim_testbenches")):
        shutil.copytree(ROOT / src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_layer_contract_holds(tmp_path):
    r = _lint(_copy(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 2 kept, 0 broken." in r.stdout


def test_the_layer_contract_bites(tmp_path):
    tree = _copy(tmp_path)
    formats = tree / "lnsim" / "spec" / "formats.py"
    formats.write_text(formats.read_text() + "\nfrom lnsim.cli import main  # a deliberate violation\n")
    stages = tree / "lnsim_rtl" / "widths.py"
    stages.write_text(stages.read_text() + "\nimport lnsim.golden  # another\n")
    r = _lint(tree)
    assert r.returncode == 1
    assert "Contracts: 0 kept, 2 broken." in r.stdout
    assert "lnsim.spec is not allowed to import lnsim.cli" in r.stdout
    assert re.search(r"lnsim_rtl\.widths -> lnsim\.golden", r.stdout)


def test_docs_option_table_is_the_generated_one():
    text = (ROOT / "docs" / "architecture.md").read_text()
    start, end = "<!-- options table: python -m lnsim.spec -->\n", "<!-- end of options table -->"
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == options_markdown(), "regenerate with: python -m lnsim.spec"


def test_every_package_is_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lnsim").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {"lnsim_rtl", "lnsim_testbenches"} <= listed
