"""lnsim sweep end to end on tiny grids (iris, 2 epochs, 4 hidden units): files, schema, resume, errors."""

import csv
import json
import math
import os
import sys

import pytest

from lnsim.cli import main
from lnsim.cli.main import build_parser
from lnsim.sweep.outputs import FIDELITY_FIELDS, TRAIN_FIELDS
from lnsim.sweep.store import PointStore
from lnsim.cli.sweep import run as run_sweep

TINY = ["--dataset", "iris", "--epochs", "2", "--hidden", "4", "--quiet"]
GRID = ["--bits", "6:8", "--eta0", "0.004,0.016", "--seeds", "2", *TINY]
TIMING = {"seconds"}


def _sweep(out, *argv):
    return main(["sweep", *argv, "--out", str(out)])


def _rows(out, stem="results"):
    with open(os.path.join(out, f"{stem}.json")) as f:
        return json.load(f)


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _point_files(out):
    return sorted(os.listdir(os.path.join(out, "points")))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted sweep: 3 bits x 2 eta0 x 2 seeds + FP32 Madam per seed."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert _sweep(out, *GRID) == 0
    return out


def test_writes_every_file_with_the_schema(finished, capsys):
    names = set(os.listdir(finished))
    assert {"results.csv", "results.json", "summary.md", "accuracy_vs_bits.png", "accuracy_heatmap.png",
            "saturation.png", "points"} <= names
    for png in ("accuracy_vs_bits.png", "accuracy_heatmap.png", "saturation.png"):
        with open(finished / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    rows = _rows(finished)
    assert len(rows) == 3 * 2 * 2 + 2 and len(_point_files(finished)) == len(rows)
    assert all(list(r) == TRAIN_FIELDS for r in rows)
    lns = [r for r in rows if r["optimizer"] == "lns-madam"]
    ref = [r for r in rows if r["optimizer"] == "madam"]
    assert [(r["bits"], r["eta0"], r["seed"]) for r in lns[:4]] == [(6, 0.004, 0), (6, 0.004, 1), (7, 0.004, 0),
                                                                     (7, 0.004, 1)]
    assert {r["series"] for r in lns} == {"eta0=0.004", "eta0=0.016"}
    assert [r["series"] for r in ref] == ["FP32 Madam"] * 2 and ref[0]["bits"] is None and ref[0]["weights"] is None
    for r in lns:
        assert 0 <= r["test_accuracy"] <= 1 and r["train_loss"] > 0 and r["model"] == "4-4-3"
        assert r["dynamic_range"] == pytest.approx(math.exp((2 ** r["bits"] - 1) * r["eta0"]))
        assert r["rung_size"] == pytest.approx(1 - math.exp(-r["eta0"]))
        assert r["eta_rungs"] == (3 if r["eta0"] == 0.004 else 1) and r["weights"] == 4 * 4 + 4 + 4 * 3 + 3
        assert r["saturated_fraction"] == (r["saturated_k0"] + r["saturated_kmax"]) / r["weights"]
        assert r["reference_key"] == ref[r["seed"]]["key"] and r["seconds"] > 0
    with open(finished / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == TRAIN_FIELDS and len(table) == len(rows)
    for line, row in zip(table, rows):
        for k, v in row.items():
            assert line[k] == ("" if v is None else str(v))
    summary = (finished / "summary.md").read_text()
    assert "| configuration | bits | eta0 | eta (rungs) | dynamic range | test accuracy |" in summary
    acc = [100 * r["test_accuracy"] for r in lns if r["bits"] == 8 and r["eta0"] == 0.016]
    mean, std = sum(acc) / 2, abs(acc[0] - acc[1]) / math.sqrt(2)
    assert f"| eta0=0.016 | 8 | 0.016 | 0.016 (1) | 59.15 | {mean:.2f} +- {std:.2f} |" in summary
    assert summary.count("\n| ") == 1 + 6 + 1  # header, points, reference


def test_rerun_skips_finished_runs(finished, capsys):
    before = {name: os.stat(finished / "points" / name).st_mtime_ns for name in _point_files(finished)}
    rows = _rows(finished)
    assert main(["sweep", *GRID, "--out", str(finished)]) == 0
    assert {name: os.stat(finished / "points" / name).st_mtime_ns for name in _point_files(finished)} == before
    assert _rows(finished) == rows  # timings too: nothing was recomputed


def test_interrupted_sweep_resumes_to_identical_results(finished, tmp_path, capsys):
    out = tmp_path / "out"
    args = build_parser().parse_args(["sweep", *GRID, "--out", str(out)])
    seen = []

    def interrupt(record):
        seen.append(record["key"])
        if len(seen) == 5:
            raise KeyboardInterrupt

    assert run_sweep(args, on_record=interrupt) == 130
    assert "interrupted; finished runs are saved" in capsys.readouterr().err
    assert _point_files(out) == sorted(f"{k}.json" for k in seen)  # whole files only, no temporaries
    assert not os.path.exists(out / "results.json")
    args = build_parser().parse_args(["sweep", *GRID, "--out", str(out)])
    assert run_sweep(args, on_record=seen.append) == 0
    assert len(seen) == len(_rows(finished))  # the rest, each once
    assert _without_timing(_rows(out)) == _without_timing(_rows(finished))


def test_a_corrupt_point_file_is_recomputed_with_a_warning(finished, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--bits", "8", "--eta0", "0.016", *TINY]
    assert _sweep(out, *args) == 0
    rows = _rows(out)
    path = PointStore(str(out)).path(rows[0]["key"])
    with open(path, "w") as f:
        f.write('{"format": 1, "key": "tru')  # as if cut short (the store never leaves this behind)
    capsys.readouterr()
    assert _sweep(out, *args) == 0
    err = capsys.readouterr().err
    assert f"lnsim sweep: warning: {path} is not valid JSON" in err and "recomputing it" in err
    assert _without_timing(_rows(out)) == _without_timing(rows)
    assert _rows(out)[1] == rows[1]  # the reference was not recomputed
    with open(path) as f:
        assert json.load(f)["key"] == rows[0]["key"]


def test_grid_file_with_command_line_override(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('bits = "6:7"\neta0 = [0.016]\ndataset = "iris"\nepochs = 1\nhidden = [4]\nseeds = 1\n'
                    'reference = false\n')
    assert main(["sweep", "--grid", str(grid), "--bits", "9", "--quiet", "--out", str(tmp_path / "out")]) == 0
    rows = _rows(tmp_path / "out")
    assert [(r["bits"], r["eta0"], r["epochs"], r["model"]) for r in rows] == [(9, 0.016, 1, "4-4-3")]


def test_two_worker_processes_give_the_sequential_results(finished, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--bits", "8", "--eta0", "0.004,0.016", "--seeds", "2", *TINY]
    assert _sweep(out, *argv, "--jobs", "2") == 0
    parallel = {r["key"]: r for r in _without_timing(_rows(out))}
    sequential = {r["key"]: r for r in _without_timing(_rows(finished))}
    assert len(parallel) == 6 and all(parallel[k] == sequential[k] for k in parallel)


def test_a_dask_cluster_gives_the_sequential_results(finished, tmp_path, capsys):
    """--backend dask on a real (local) Dask cluster of two worker processes: the same results as in-process."""
    import distributed

    out = tmp_path / "out"
    argv = ["--bits", "8", "--eta0", "0.004,0.016", "--seeds", "2", *TINY]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert _sweep(out, *argv, "--backend", "dask", "--scheduler", cluster.scheduler_address) == 0
    on_dask = {r["key"]: r for r in _without_timing(_rows(out))}
    sequential = {r["key"]: r for r in _without_timing(_rows(finished))}
    assert len(on_dask) == 6 and all(on_dask[k] == sequential[k] for k in on_dask)


def test_fidelity_sweep(tmp_path, capsys):
    out = tmp_path / "out"
    assert _sweep(out, "--fidelity", "--bits", "8,12", "--eta0", "0.004", "--elements", "3000", "--steps", "4",
                  "--quiet") == 0
    rows = _rows(out, "fidelity")
    assert [list(r) for r in rows] == [FIDELITY_FIELDS] * 2
    assert [(r["bits"], r["eta_rungs"], r["eta_star_rungs"], r["updates"]) for r in rows] == [(8, 3, 24, 12000),
                                                                                              (12, 3, 24, 12000)]
    for r in rows:
        assert 0.99 < r["exact"] <= 1 and r["max_error"] <= 1 and r["table_bits"] == 5547
    assert {"fidelity.csv", "fidelity.md", "fidelity.png"} <= set(os.listdir(out))
    assert "| eta0=0.004 | 8 | 0.004 | 0.012 (3) | 24 |" in (out / "fidelity.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--bits", "4:x"], "bits must be integers: a list like 6,8,10 or an inclusive range lo:hi or lo:hi:step, not '4:x'"),
    (["--bits", "25"], "grid point bits=25 base=natural eta0=0.001: bits must be an integer in 2..24, not 25"),
    (["--bits", "16", "--eta0", "0.004"], "grid point bits=16 base=natural eta0=0.004: bits=16 with eta0=0.004 gives"),
    (["--eta", "0.01", "--eta0", "0.004"], "grid point bits=12 base=natural eta0=0.004 eta=0.01: eta must be a whole"),
    (["--dataset", "mnist"], "dataset must be one of digits, iris, wine, breast_cancer, mnist1d, not 'mnist'"),
    (["--data", "missing.npz"], "data must be an existing .npz file"),
    (["--grid", "missing.toml"], "grid must be a readable file, not 'missing.toml' (No such file or directory)"),
    (["--epochs", "0"], "epochs must be an integer >= 1, not 0"),
    (["--seeds", "x"], "seeds must be an integer in 1..1000, not 'x'"),
    (["--jobs", "0"], "jobs must be an integer in 1..1024 or -1 (one per core), not 0"),
    (["--backend", "ray"], "backend must be one of loky, dask, not 'ray'"),
    (["--backend", "dask"], "scheduler must be given with --backend dask"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:8786"],
     "backend dask needs the distributed package: pip install distributed"),
    (["--scheduler", "tcp://127.0.0.1:8786"], "scheduler applies to --backend dask, not to 'loky'"),
])
def test_errors_exit_2_with_one_line_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    if "distributed" in message:
        monkeypatch.setitem(sys.modules, "distributed", None)  # as on a machine without it: import fails
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", *argv, "--out", "out", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lnsim: error: {message}") and err.count("\n") == 1 and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_the_issue_grid_on_two_workers_then_a_rerun_computes_nothing(tmp_path):
    """The issue's grid for real; its time is measured by benchmarks/bench_sweep.py, not asserted here."""
    argv = ["sweep", "--bits", "6:12", "--eta0", "0.001,0.004", "--dataset", "digits", "--seeds", "2", "--jobs", "2",
            "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    points = {name: os.stat(tmp_path / "points" / name).st_mtime_ns for name in _point_files(tmp_path)}
    first = _rows(tmp_path)
    assert main(argv) == 0
    assert {name: os.stat(tmp_path / "points" / name).st_mtime_ns for name in _point_files(tmp_path)} == points
    assert _rows(tmp_path) == first and len(first) == 7 * 2 * 2 + 2
