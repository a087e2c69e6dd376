"""Finished tasks on disk: ``OUT/points/<key>.json``, one file each, written atomically.

A file is written to a temporary name in the same directory and renamed over the final name
(:func:`os.replace`), so a reader sees either no file or a whole one, whatever kills the writer.
"""

from __future__ import annotations

import json
import os

from lnsim.files import atomic_write

__all__ = ["PointStore"]


class PointStore:
    """The finished tasks of a sweep under ``out/points``; :meth:`load` returns a record only if it is whole and
    belongs to the key asked for."""

    def __init__(self, out: str):
        self.out = out
        self.directory = os.path.join(out, "points")
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise ValueError(f"out must be a writable directory, not {out!r} ({e.strerror})") from None

    def path(self, key: str) -> str:
        """Where the record of ``key`` lives."""
        return os.path.join(self.directory, f"{key}.json")

    def save(self, record: dict) -> None:
        """Write ``record`` (with its ``key``) atomically."""
        atomic_write(self.path(record["key"]), json.dumps(record, indent=1, allow_nan=False) + "\n")

    def load(self, key: str, format_: int) -> tuple[dict | None, str | None]:
        """The stored record of ``key`` and None, or None and a one-line reason if it is missing (reason None),
        unreadable, not JSON, of another result format or another key (then it is to be recomputed)."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None, None
        except OSError as e:
            return None, f"{path} is unreadable ({e.strerror})"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            return None, f"{path} is not valid JSON ({' '.join(str(e).split())})"
        if not isinstance(record, dict) or not isinstance(record.get("measured"), dict):
            return None, f"{path} does not hold a result record"
        if record.get("format") != format_ or record.get("key") != key:
            return None, f"{path} holds format {record.get('format')!r} key {record.get('key')!r}, not {format_} {key}"
        return record, None
