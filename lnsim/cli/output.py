"""Files the subcommands write: JSON reports, written atomically, with a one-line error naming the option."""

from __future__ import annotations

import json

from lnsim.files import atomic_write
from lnsim.validation import SpecError

__all__ = ["write_json"]


def write_json(path: str, payload, *, option: str = "json", indent: int = 2) -> None:
    """Write ``payload`` as JSON (``indent`` spaces, a final newline) to ``path`` atomically; a path that cannot
    take it is a SpecError naming ``option``."""
    try:
        atomic_write(path, json.dumps(payload, indent=indent) + "\n", option=option)
    except OSError as e:
        raise SpecError(f"{option} must be a writable file path, not {path!r} ({e.strerror})") from None
