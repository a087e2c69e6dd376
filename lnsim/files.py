"""Files lnsim writes and reads: atomic writes, and ``.npz`` archives read without trusting them."""

from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np

__all__ = ["atomic_write", "read_npz"]


def atomic_write(path: str, data: bytes | str | Callable, *, option: str = "output") -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, fsync, then ``os.replace``.

    ``data`` is bytes, text (UTF-8), or a function that writes into the binary file object it is given. A
    reader sees the old file or the whole new one, whatever interrupts the writer; no temporary file is left.
    A directory that cannot take the file is a ValueError naming ``option``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise ValueError(f"{option} must be a writable file path, not {path!r} ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_npz(path: str, option: str, kind: str) -> dict:
    """All arrays of the ``.npz`` archive at ``path`` (``allow_pickle=False``), as a dict of name -> array.

    ``option`` and ``kind`` word the errors: ``"{option} must be an existing {kind}, not {path!r} (no such
    file)"``, ``"... must be a file, not ... (a directory)"``, or ``"{option} must be a readable {kind}, not
    {path!r} (unreadable: ...)"`` for an empty, truncated or foreign file or a single ``.npy`` array. The
    file is closed whatever happens.
    """
    try:
        with open(path, "rb") as fh:  # opened here: np.load leaks its own handle when the zip is damaged
            f = np.load(fh, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise ValueError(f"{option} must be an existing {kind}, not {path!r} (no such file)") from None
    except IsADirectoryError:
        raise ValueError(f"{option} must be a file, not {path!r} (a directory)") from None
    except Exception as e:  # zipfile.BadZipFile, EOFError, zlib.error, pickled data, ...: a damaged or foreign file
        raise ValueError(f"{option} must be a readable {kind}, not {path!r} (unreadable: {type(e).__name__}: {e})") from None
