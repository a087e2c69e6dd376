"""The results tables of README.md and docs/*.md are what their scripts print.

Every table sits between ``<!-- table: COMMAND -->`` and ``<!-- end of table -->`` (benchmarks/tables.py), and
``COMMAND --write FILE`` writes it. Here each command is rerun on copies of the files holding its tables and
the regions are compared with the committed ones, character for character except run times (``seconds``
cells). The synthesis table rendered from the committed sweep CSV runs in the normal test run; the commands
that train, measure or synthesise (about half a minute to 25 minutes each) are ``slow``: ``pytest -m slow
tests/test_results_tables.py``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tables  # noqa: E402  (benchmarks/tables.py)

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Every command that writes a table, and the files holding its tables.
EXPECTED = {
    "python benchmarks/train_table.py": {"README.md", "docs/train.md"},
    "python benchmarks/init_table.py": {"docs/train.md"},
    "python benchmarks/torch_table.py": {"README.md", "docs/torch.md"},
    "python benchmarks/fidelity_table.py": {"README.md", "docs/datapath.md"},
    "python benchmarks/synth_table.py": {"README.md", "docs/hardware.md"},
    "python benchmarks/families_table.py": {"docs/hardware.md"},
    "python benchmarks/system_table.py": {"docs/hardware.md"},
    "python benchmarks/explore_table.py grid": {"docs/explore.md"},
    "python benchmarks/explore_table.py range60": {"docs/explore.md"},
}
#: Tables timed on the machine that ran them: their command is named, their numbers are not compared.
MACHINE_DEPENDENT = {"python benchmarks/bench_golden.py": {"README.md"}}


def committed() -> dict:
    """``{(command, file relative to the root): Region}`` of every table region in README.md and docs/*.md."""
    found = {}
    for path in DOCS:
        for r in tables.regions(path.read_text()):
            found[r.command, str(path.relative_to(ROOT))] = r
    return found


def regenerate(command: str, tmp_path: Path, extra=(), timeout=600) -> dict:
    """Run ``command`` (plus ``extra``) in ``tmp_path`` with ``--write`` on copies of the files holding its
    tables; returns ``{file: region text}`` of what it wrote."""
    files = sorted(f for c, f in committed() if c == command)
    copies = {}
    for f in files:
        copies[f] = tmp_path / "docs-copy" / f
        copies[f].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, copies[f])
    argv = shlex.split(command)
    assert argv[0] == "python"
    writes = [arg for f in files for arg in ("--write", str(copies[f]))]
    done = subprocess.run([sys.executable, str(ROOT / argv[1]), *argv[2:], *extra, *writes], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return {f: {r.command: r.text for r in tables.regions(copies[f].read_text())}[command] for f in files}


def assert_reproduced(command: str, produced: dict) -> None:
    have = committed()
    diffs = {f: tables.compare(have[command, f].text, text) for f, text in produced.items()}
    assert produced and not any(diffs.values()), f"{command} no longer produces the committed tables: {diffs}"


# -- always run -------------------------------------------------------------------------------------------------

def test_every_table_names_an_existing_script_next_to_it():
    found = committed()
    by_command = {}
    for (command, f), r in found.items():
        by_command.setdefault((command, r.machine_dependent), set()).add(f)
        argv = shlex.split(command)
        assert argv[0] == "python" and (ROOT / argv[1]).is_file(), f"{f}:{r.line}: {command!r} names no script"
        assert re.search(r"^\|.*\|$", r.text, re.M), f"{f}:{r.line}: the region of {command!r} holds no table"
        # The command is named in the visible text, not only in the (invisible) marker.
        visible = re.sub(r"<!--.*?-->", "", (ROOT / f).read_text(), flags=re.S)
        assert f"`{command}" in visible, f"{f}: the text never names `{command}`"
    assert by_command == {**{(c, False): fs for c, fs in EXPECTED.items()},
                          **{(c, True): fs for c, fs in MACHINE_DEPENDENT.items()}}


def test_the_comparison_reports_one_changed_number():
    region = committed()["python benchmarks/fidelity_table.py", "README.md"].text
    assert tables.compare(region, region) == []
    assert "| B=12 eta0=0.001, defaults | 99.992% | 2,469 |" in region
    changed = region.replace("| 99.992% | 2,469 |", "| 99.992% | 2,470 |")
    diffs = tables.compare(region, changed)
    assert len(diffs) == 1 and diffs[0].startswith("line 5: ") and "2,470" in diffs[0]
    assert tables.compare(region, region + "\n| B=4 | 100.000% | 0 | 0 | 0 |") == ["committed 17 lines but produced 18"]


def test_the_comparison_skips_seconds_and_nothing_else():
    region = committed()["python benchmarks/train_table.py", "docs/train.md"].text
    rows = region.splitlines()
    assert rows[0].endswith("| saturated codes | seconds |") and rows[2].startswith("| FP32 Madam |")
    slower = rows[2].rsplit("|", 2)[0] + "| 12345 |"
    assert tables.compare(region, "\n".join([*rows[:2], slower, *rows[3:]])) == []
    cells = rows[2].split(" | ")
    cells[3] = "97.48 +- 0.37"                    # the test accuracy, one digit off
    diffs = tables.compare(region, "\n".join([*rows[:2], " | ".join(cells), *rows[3:]]))
    assert len(diffs) == 1 and "97.48 +- 0.37" in diffs[0]


def test_write_replaces_only_the_named_region(tmp_path):
    doc = ("intro\n<!-- table: python a.py -->\n| a |\n|---|\n| 1 |\n<!-- end of table -->\nmiddle\n"
           "<!-- table: python b.py x -->\n| b |\n<!-- end of table -->\nend\n")
    path = tmp_path / "d.md"
    path.write_text(doc)
    tables.write(str(path), "python b.py x", "| b |\n|---|\n| 2 |\n")
    assert path.read_text() == doc.replace("| b |\n<!-- end", "| b |\n|---|\n| 2 |\n<!-- end")
    assert [r.command for r in tables.regions(path.read_text())] == ["python a.py", "python b.py x"]
    with pytest.raises(SystemExit, match="no <!-- table: python c.py -->"):
        tables.write(str(path), "python c.py", "| c |")
    for bad, error in [("<!-- table: python a.py -->\n| a |\n", "has no <!-- end of table -->"),
                       ("| a |\n<!-- end of table -->\n", "1 <!-- end of table --> markers for 0"),
                       ("<!-- table: python a.py -->\n<!-- table: python b.py -->\n<!-- end of table -->\n", "next table marker"),
                       ("<!-- table: python a.py -->\n<!-- end of table -->\n" * 2, "two tables name")]:
        with pytest.raises(ValueError, match=error):
            tables.regions(bad)


def test_synth_tables_are_the_committed_sweep_csv(tmp_path):
    """The synthesis tables are rendered from docs/img/synth-sweep.csv, the sweep's committed output (the
    sweep itself reruns in the slow test below)."""
    produced = regenerate("python benchmarks/synth_table.py", tmp_path,
                          extra=["--csv", str(ROOT / "docs/img/synth-sweep.csv")], timeout=120)
    assert_reproduced("python benchmarks/synth_table.py", produced)


def test_system_tables_are_the_committed_engine_csv(tmp_path):
    """The update engine's system numbers are rendered from docs/img/engine-synth.csv and lnsim.fpga.capacity
    (the runs themselves are `python benchmarks/system_table.py --run`, about 15 minutes)."""
    produced = regenerate("python benchmarks/system_table.py", tmp_path,
                          extra=["--csv", str(ROOT / "docs/img/engine-synth.csv")], timeout=120)
    assert_reproduced("python benchmarks/system_table.py", produced)


# -- slow: rerun the measurements ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("command, extra, timeout", [
    ("python benchmarks/train_table.py", ["--jobs", "2"], 900),                # about 20 s with 2 jobs
    ("python benchmarks/init_table.py", ["--jobs", "2"], 900),                 # about 2 minutes with 2 jobs
    ("python benchmarks/fidelity_table.py", ["--jobs", "2"], 900),             # about 50 s with 2 jobs
    ("python benchmarks/explore_table.py grid", [], 900),                      # about 40 s
    ("python benchmarks/explore_table.py range60", [], 900),                   # about 40 s
    ("python benchmarks/torch_table.py", ["--jobs", "2"], 3 * 3600),           # about 25 minutes
])
def test_measured_tables_reproduce(command, extra, timeout, tmp_path):
    assert_reproduced(command, regenerate(command, tmp_path, extra=extra, timeout=timeout))


@pytest.mark.slow
@pytest.mark.hw
def test_synth_sweep_reproduces(tmp_path):
    """The whole synthesis sweep again (the pinned yowasp tools, seed 1; 15-20 minutes on 2 cores)."""
    command = "python benchmarks/synth_table.py"
    assert_reproduced(command, regenerate(command, tmp_path, extra=["--jobs", "2"], timeout=3 * 3600))


@pytest.mark.slow
@pytest.mark.hw
def test_families_table_reproduces(tmp_path):
    """The six runs on the further FPGA families again (seed 1; about 10 minutes on 2 cores)."""
    command = "python benchmarks/families_table.py"
    assert_reproduced(command, regenerate(command, tmp_path, extra=["--jobs", "2"], timeout=3600))
