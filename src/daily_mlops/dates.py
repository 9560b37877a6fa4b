"""Logical dates: the calendar day of a DAG run, and the seed derived from it.

Every write of the loop is keyed by the logical date's UTC calendar day, and
every random draw of a day is seeded by :func:`day_seed`, so a rerun of the
same DAG run reproduces it (reruns converge). Standard library only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import numbers
from typing import Any

from daily_mlops.errors import MLOpsError

__all__ = ["LogicalDate", "chunk_seed", "day_seed", "logical_day"]

LogicalDate = dt.date | dt.datetime | str


def logical_day(logical_date: LogicalDate) -> dt.date:
    """Return the calendar day (UTC) of a DAG run's logical date.

    Parameters
    ----------
    logical_date : datetime.date, datetime.datetime or str
        A date, a datetime (naive is read as UTC; aware is converted to UTC,
        as Airflow's logical dates are), or an ISO 8601 string of either.

    Returns
    -------
    datetime.date
        The UTC calendar day.

    Raises
    ------
    MLOpsError
        If ``logical_date`` is of another type or an unparsable string.
    """
    value: Any = logical_date
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise MLOpsError(
                f"logical date {logical_date!r} is not an ISO 8601 date or datetime; "
                "pass e.g. '2024-01-31' or '2024-01-31T00:00:00+00:00'"
            ) from exc
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise MLOpsError(
        f"logical date {logical_date!r} has type {type(logical_date).__name__}; "
        "pass a datetime.date, a datetime.datetime or an ISO 8601 string"
    )


def day_seed(seed: int, logical_date: LogicalDate) -> int:
    """Derive the sampling seed of one logical date from the run seed.

    The seed is the first 4 bytes (big-endian) of
    ``sha256(f"{seed}:{YYYY-MM-DD}")``: stable across processes and Python
    versions (unlike the salted built-in ``hash``) and a valid NumPy
    ``RandomState`` seed.

    Parameters
    ----------
    seed : int
        The run seed (``MLOPS_SEED``).
    logical_date : datetime.date, datetime.datetime or str
        The DAG run's logical date; only its UTC calendar day is used
        (see :func:`logical_day`).

    Returns
    -------
    int
        A seed in ``[0, 2**32 - 1]``.

    Raises
    ------
    MLOpsError
        If ``seed`` is not an integer or ``logical_date`` cannot be read.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise MLOpsError(f"seed {seed!r} is not an integer; set MLOPS_SEED to an integer")
    day = logical_day(logical_date)
    digest = hashlib.sha256(f"{int(seed)}:{day.isoformat()}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big")


def chunk_seed(random_state: int, k: int) -> int:
    """The sampling seed of chunk ``k >= 1`` of a day sampled in chunks (chunk 0 uses ``random_state`` itself).

    The first 4 bytes (big-endian) of ``sha256(f"{random_state}:chunk:{k}")``,
    where ``random_state`` is the day's :func:`day_seed`: stable across
    processes and a valid NumPy ``RandomState`` seed.

    Returns
    -------
    int
        A seed in ``[0, 2**32 - 1]``.
    """
    digest = hashlib.sha256(f"{int(random_state)}:chunk:{int(k)}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big")
