"""Reading a user's ``.npz`` file safely: every failure is one ValueError naming the option and the path."""

from __future__ import annotations

import numpy as np

__all__ = ["read_npz"]


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
