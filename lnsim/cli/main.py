"""The ``lnsim`` command: one parser with a subcommand per job, and the one place errors become exit codes.

Each subcommand module (``info``, ``train``, ``sweep``, ``synth``, ``verilog``, ``verify``, ``vectors``,
``prove``) has ``add_parser`` registering its flags and a ``run`` function returning the exit status.
Invalid input raises a ValueError (:class:`lnsim.SpecError` and the trainer's data errors), which :func:`main` prints as one line
``lnsim: error: <message>`` with exit status 2. Ctrl-C (KeyboardInterrupt) is one line ``lnsim: interrupted``
and exit status 130 (128 + SIGINT, as a shell reports it); the layers below remove their temporary files on
the way out. Output into a pipe whose reader has gone (``lnsim info | head -1``) ends quietly with exit
status 141 (128 + SIGPIPE).
"""

from __future__ import annotations

import argparse
import os
import sys

from lnsim import __version__
from lnsim.cli import info, prove, sweep, synth, train, vectors, verify, verilog

__all__ = ["BROKEN_PIPE", "INTERRUPTED", "Parser", "build_parser", "main"]

#: Exit status after Ctrl-C: 128 + SIGINT.
INTERRUPTED = 130
#: Exit status when the output's reader closed it: 128 + SIGPIPE.
BROKEN_PIPE = 141


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``lnsim: error: <message>``, exit status 2, no usage dump."""

    def error(self, message):
        self.exit(2, f"lnsim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``lnsim`` argument parser with all subcommands."""
    parser = Parser(prog="lnsim", description="Bit-accurate B-bit Madam on LNS weights.")
    parser.add_argument("--version", action="version", version=f"lnsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (info, train, sweep, synth, verilog, verify, vectors, prove):
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``lnsim`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # SpecError and the trainer's data errors: one line, no traceback
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``lnsim info | head``): stop quietly, as a shell tool does. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except KeyboardInterrupt:
        # On a terminal the cursor is after the echoed ^C (or a progress line): start a line of our own.
        print(("\n" if sys.stderr.isatty() else "") + "lnsim: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
