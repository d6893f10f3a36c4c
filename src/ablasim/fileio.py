"""Files: atomic writing (a file appears whole or not at all), and reading volumes.

Every output of ablasim goes through :func:`atomic_write`: the content is written to a
temporary file in the same directory, flushed to disk, then renamed over the target with
:func:`os.replace` (atomic on POSIX and Windows). An interrupted run never leaves a
half-written report or image behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from .errors import ScenarioError

__all__ = ["atomic_path", "atomic_write", "load_volume"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kw) -> Iterator[IO]:
    """Open a temporary file for writing; on success, move it to ``path``.

    ``mode`` is ``"w"`` (text, UTF-8 unless ``encoding`` is given) or ``"wb"``.
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_write supports modes 'w' and 'wb'")
    with atomic_path(path) as tmp:
        if mode == "w":
            kw.setdefault("encoding", "utf-8")
            kw.setdefault("newline", "")
        with open(tmp, mode, **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` for libraries that write files themselves
    (matplotlib, nibabel, ...); moved over ``path`` on success, removed on failure.

    The temporary name keeps the target's suffixes, so format detection by extension
    still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(
        prefix=f".ablasim-tmp.{path.name}.", suffix=".part" + suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates the file 0600; give the final file the usual 0666 & ~umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load_volume(path: str | os.PathLike) -> np.ndarray:
    """A 3D array from ``.npy`` (read without pickle) or NIfTI (``.nii``, ``.nii.gz``),
    as float64; a :class:`~ablasim.errors.ScenarioError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"file {str(path)!r} not found; check the path")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(np.float64)
        if path.name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
    except Exception as exc:  # any reader failure is a bad file, said in one line
        raise ScenarioError(f"cannot read {str(path)!r}: {exc}") from None
    raise ScenarioError(f"{str(path)!r}: unsupported format; use .npy or .nii / .nii.gz")
