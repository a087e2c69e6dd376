"""Files lnsim writes and reads: atomic writes, output paths checked before the work, and ``.npz`` archives read
without trusting them."""

from __future__ import annotations

import os
import secrets
import stat
from typing import Callable

import numpy as np

__all__ = ["atomic_write", "check_writable", "read_npz"]

#: Mode of a new file before the umask, as ``open(path, "w")`` creates it.
_NEW_FILE_MODE = 0o666


def _create_temporary(directory: str, name: str) -> tuple[int, str]:
    """A new empty file ``.<name>.<random>.tmp`` in ``directory``, opened for writing: ``(fd, path)``.

    Created with ``os.open(..., 0o666)`` so the kernel applies the umask (and a directory's default ACL) as for
    any new file; ``tempfile.mkstemp`` would make it 0600 whatever the umask. Raises OSError as ``os.open``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(path, flags, _NEW_FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name!r} in {directory!r}")


def _unwritable(path: str, option: str, reason: str) -> ValueError:
    return ValueError(f"{option} must be a writable file path, not {path!r} ({reason})")


def check_writable(path: str, option: str = "output") -> None:
    """Raise ValueError unless a file can be written at ``path``: before a long job, so it fails before the work.

    The check is the real thing: a temporary file is created in the path's directory and removed (nothing is
    left, an existing file at ``path`` is not touched). The message is that of :func:`atomic_write`:
    ``"{option} must be a writable file path, not {path!r} (<reason>)"``, the reason the system's (``No such
    file or directory``, ``Permission denied``, ``Read-only file system``) or ``a directory``.
    """
    if os.path.isdir(path):
        raise _unwritable(path, option, "a directory")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _create_temporary(directory, os.path.basename(path))
    except OSError as e:
        raise _unwritable(path, option, e.strerror or str(e)) from None
    os.close(fd)
    os.unlink(tmp)


def atomic_write(path: str, data: bytes | str | Callable, *, option: str = "output") -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, fsync, then ``os.replace``.

    ``data`` is bytes, text (UTF-8), or a function that writes into the binary file object it is given. A
    reader sees the old file or the whole new one, whatever interrupts the writer; no temporary file is left.
    The file gets the mode ``open(path, "w")`` would give it: an existing file's own mode, else 0666 less the
    umask. A directory that cannot take the file is a ValueError naming ``option``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _create_temporary(directory, os.path.basename(path))
    except OSError as e:
        raise _unwritable(path, option, e.strerror or str(e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass
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
