"""What the subcommands write besides their tables: output paths checked before any work, JSON reports written
atomically (or to stdout for ``-``) with one-line errors naming the option, and warnings about a spec."""

from __future__ import annotations

import json
import os
import sys

from lnsim.files import atomic_write, check_writable
from lnsim.spec import spec_warnings
from lnsim.validation import SpecError

__all__ = ["STDOUT", "PLOT_FORMATS", "check_outputs", "check_plot_path", "text_stream", "warn_spec", "write_json",
           "wrote"]

#: The path that means standard output (``--json -``).
STDOUT = "-"


def check_outputs(*, stdout_ok: tuple = ("json",), **paths) -> None:
    """Check every output path before the work (:func:`lnsim.files.check_writable`): ``paths`` maps an option's
    name to its path (None: not given). ``-`` is standard output for the options named in ``stdout_ok`` and a
    SpecError for the others; any path that cannot take a file is a SpecError naming its option."""
    for option, path in paths.items():
        if path is None:
            continue
        if path == STDOUT:
            if option not in stdout_ok:
                raise SpecError(f"{option} must be a file path, not {path!r} (only --json writes to stdout)")
            continue
        try:
            check_writable(path, option)
        except ValueError as e:
            raise SpecError(str(e)) from None


#: Image formats a plot can be written in (matplotlib's, from the file name's extension).
PLOT_FORMATS = ("png", "pdf", "svg")


def check_plot_path(path: str | None, option: str = "plot") -> None:
    """A SpecError unless ``path`` (None: not given) ends in one of :data:`PLOT_FORMATS`' extensions, which name
    the format: matplotlib would otherwise add ``.png`` to a name without one and write another file."""
    if path is None or path == STDOUT:
        return
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        allowed = ", ".join(f".{e}" for e in PLOT_FORMATS[:-1]) + f" or .{PLOT_FORMATS[-1]}"
        raise SpecError(f"{option} must be a file name ending in {allowed}, not {path!r}")


def wrote(path: str, what: str) -> None:
    """Say on stderr that ``path`` was written: ``wrote <path>: <what>``."""
    print(f"wrote {path}: {what}", file=sys.stderr)


def text_stream(json_path: str | None):
    """Where a subcommand prints its table: stdout, or stderr when the JSON goes to stdout (``--json -``), so
    that stdout is the JSON alone."""
    return sys.stderr if json_path == STDOUT else sys.stdout


def write_json(path: str, payload, *, option: str = "json", indent: int = 2) -> None:
    """Write ``payload`` as JSON (``indent`` spaces, a final newline) to ``path`` atomically, or to stdout for
    ``-``; a path that cannot take it is a SpecError naming ``option``."""
    text = json.dumps(payload, indent=indent) + "\n"
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write(path, text, option=option)
    except OSError as e:
        raise SpecError(f"{option} must be a writable file path, not {path!r} ({e.strerror})") from None
    except ValueError as e:
        raise SpecError(str(e)) from None


def warn_spec(spec, prefix: str = "") -> None:
    """Print each of :func:`lnsim.spec.spec_warnings` of ``spec`` on stderr as ``lnsim: warning: <prefix><text>``."""
    for text in spec_warnings(spec):
        print(f"lnsim: warning: {prefix}{text}", file=sys.stderr)
