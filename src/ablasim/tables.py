"""The time-series table (``timeseries.csv``): time, phase, power, thermocouple temperatures.

Plain comma-separated text with one header row, readable by :func:`pandas.read_csv`, a
spreadsheet or :func:`read_timeseries_csv` (standard library only). Floating-point numbers
are written in their shortest form that reads back to the same value (``repr`` round-trip,
float32 columns at float32 precision), or to a given number of significant digits.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .fileio import atomic_write

__all__ = ["read_timeseries_csv", "write_timeseries_csv"]

_RESERVED = ("time_s", "phase")


def _column(name: str, values, n: int | None) -> np.ndarray:
    """A 1D array of ``values``; ValueError naming the column if it is not 1D of length n."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(
            f"column {name!r} has {a.shape[0]} values but time_s has {n}; "
            "every column needs one value per time"
        )
    return a


def _format(a: np.ndarray, digits: int | None) -> list[str]:
    """Text of each value: shortest round-trip repr, or ``digits`` significant digits."""
    if a.dtype == np.bool_:
        return ["1" if v else "0" for v in a]
    if np.issubdtype(a.dtype, np.integer):
        return [str(int(v)) for v in a]
    if np.issubdtype(a.dtype, np.floating):
        if digits is not None:
            return [format(float(v), f".{digits}g") for v in a]
        # NumPy prints the shortest string that reads back to the same value at the
        # array's own precision: float32 37.1 -> "37.1", not "37.099998474121094".
        return [str(v) for v in a.astype(a.dtype if a.dtype.itemsize >= 4 else np.float32)]
    return [str(v) for v in a]


def write_timeseries_csv(
    path: str | os.PathLike,
    time_s,
    columns: Mapping[str, np.ndarray],
    *,
    phase_names: Sequence[str] | None = None,
    digits: int | None = None,
) -> Path:
    """Write the time-series table as CSV, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target file (conventionally ``timeseries.csv``). Parent folders are created.
    time_s : array_like, shape (n,)
        Times [s]; the first column, ``time_s``.
    columns : mapping of str to array_like
        Further columns in order, each of length ``n``; the unit in the name, e.g.
        ``power_W``, ``tc_epidural_C``. Floats, integers and booleans (written 0/1).
    phase_names : sequence of str, optional
        The name of the phase at each time; written as the second column, ``phase``.
    digits : int, optional
        Significant digits for floating-point values (e.g. 6). Default: the shortest text
        that reads back to exactly the same number.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If a column (or ``phase_names``) differs in length from ``time_s``, is not
        one-dimensional, or uses a reserved name (``time_s``, ``phase``); the message names
        the column.

    Examples
    --------
    >>> import tempfile, os
    >>> p = write_timeseries_csv(os.path.join(tempfile.mkdtemp(), "timeseries.csv"),
    ...                          [0.0, 1.0], {"power_W": [20.0, 19.5]}, phase_names=["rf"] * 2)
    >>> print(p.read_text(), end="")
    time_s,phase,power_W
    0.0,rf,20.0
    1.0,rf,19.5
    """
    t = _column("time_s", time_s, None)
    n = t.shape[0]
    header = ["time_s"]
    cols = [_format(t, None)]
    if phase_names is not None:
        phases = list(phase_names)
        if len(phases) != n:
            raise ValueError(
                f"column 'phase' has {len(phases)} values but time_s has {n}; "
                "give one phase name per time"
            )
        header.append("phase")
        cols.append([str(p) for p in phases])
    for name, values in columns.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"column names must be non-empty strings, got {name!r}")
        if name in _RESERVED or name in header:
            raise ValueError(f"column name {name!r} is reserved or repeated; rename it")
        header.append(name)
        cols.append(_format(_column(name, values, n), digits))

    path = Path(path)
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*cols, strict=True))
    return path


def _parse(values: list[str]) -> np.ndarray | list[str]:
    """Integers, then floats, else the strings themselves."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) for v in values], dtype=float)
    except ValueError:
        return values


def read_timeseries_csv(path: str | os.PathLike) -> dict[str, np.ndarray | list[str]]:
    """Read a table written by :func:`write_timeseries_csv` (standard library ``csv``).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    Returns
    -------
    dict of str to ndarray or list of str
        One entry per column in file order: integer columns as ``int64`` arrays, other
        numeric columns as ``float64`` arrays, text columns (``phase``) as lists of str.
    """
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header row")
    header, body = rows[0], rows[1:]
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {r} has {len(row)} fields, header has {len(header)}")
    return {name: _parse([row[c] for row in body]) for c, name in enumerate(header)}
