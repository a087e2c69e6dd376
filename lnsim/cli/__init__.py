"""The ``lnsim`` command line: :func:`main` and one module per subcommand. A leaf: nothing else in lnsim
imports it."""

from lnsim.cli.main import main

__all__ = ["main"]
