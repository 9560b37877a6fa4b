"""SHA-256 checksums: the one check every stored artifact passes before it is deserialised.

Standard library only, so both ``storage`` (which records digests) and ``ml``
(which verifies bytes before loading them) use it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from daily_mlops.errors import IntegrityError

__all__ = ["check_sha256", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 digest of ``data`` (64 characters)."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: Any, expected: str, *, what: str) -> bytes:
    """Return ``data`` as bytes when it hashes to ``expected``; call this before deserialising anything.

    Raises
    ------
    IntegrityError
        When ``data`` is not bytes or its sha256 differs; the message names
        ``what`` (e.g. "synthesizer artifact") and both digests.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise IntegrityError(f"{what} is a {type(data).__name__}, not bytes; it was not loaded")
    data = bytes(data)
    actual = sha256_hex(data)
    wanted = str(expected).strip().lower()
    if actual != wanted:
        raise IntegrityError(
            f"{what} sha256 mismatch: expected {wanted}, actual {actual}; it was not loaded (the bytes were "
            "changed or the record is wrong: re-create the artifact or restore it)"
        )
    return data
