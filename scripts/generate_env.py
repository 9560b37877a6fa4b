#!/usr/bin/env python3
"""Write ``.env`` for docker-compose.yml with fresh random secrets.

``.env.example`` is the template: its comments and non-secret values are kept,
and every value ``change-me`` is replaced by a random one (a Fernet key for
``AIRFLOW__CORE__FERNET_KEY``, ``secrets.token_urlsafe`` for the rest, which is
safe inside connection URLs). The file is created with mode 0600. An existing
``.env`` is left alone unless ``--force`` is given.

Usage::

    python scripts/generate_env.py [--force] [--output PATH] [--template PATH]

Needs only the standard library and ``cryptography`` (an Airflow dependency).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "change-me"
_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def _token(nbytes: int) -> Callable[[], str]:
    return lambda: secrets.token_urlsafe(nbytes)


#: How each known secret is generated; any other ``change-me`` gets token_urlsafe(32).
GENERATORS: dict[str, Callable[[], str]] = {
    "AIRFLOW__CORE__FERNET_KEY": lambda: Fernet.generate_key().decode("ascii"),
    "AIRFLOW__API_AUTH__JWT_SECRET": _token(48),
    "AIRFLOW__API__SECRET_KEY": _token(32),
    "_AIRFLOW_WWW_USER_PASSWORD": _token(18),
    "POSTGRES_PASSWORD": _token(24),
    "MONGO_ROOT_PASSWORD": _token(24),
    "MONGO_APP_PASSWORD": _token(24),
    "REDIS_PASSWORD": _token(24),
}


def default_airflow_uid() -> int:
    """The uid the Airflow containers should run as: the caller's, unless root or not POSIX."""
    getuid = getattr(os, "getuid", None)
    uid = getuid() if getuid is not None else 0
    return uid if uid > 0 else 50000


def render(template: str, airflow_uid: int | None = None) -> str:
    """Return ``template`` with every ``change-me`` value replaced by a random secret.

    ``AIRFLOW_UID`` is set to ``airflow_uid`` when given. Comments, blank lines
    and other values are copied unchanged.
    """
    out: list[str] = []
    for line in template.splitlines():
        match = _LINE.match(line.strip())
        if match:
            key, value = match["key"], match["value"].strip()
            if value == PLACEHOLDER:
                line = f"{key}={GENERATORS.get(key, _token(32))()}"
            elif key == "AIRFLOW_UID" and airflow_uid is not None:
                line = f"{key}={airflow_uid}"
        out.append(line)
    return "\n".join(out) + "\n"


def write_env(output: Path, content: str, force: bool = False) -> None:
    """Write ``content`` to ``output`` with mode 0600.

    Raises
    ------
    FileExistsError
        When ``output`` exists and ``force`` is false.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(output, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(content)
    finally:
        if fd != -1:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / ".env", help="file to write (default: .env)")
    parser.add_argument(
        "--template", type=Path, default=ROOT / ".env.example", help="template (default: .env.example)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument(
        "--airflow-uid",
        type=int,
        default=None,
        help="AIRFLOW_UID to write (default: your uid, or 50000 when run as root)",
    )
    args = parser.parse_args(argv)

    if args.output.exists() and not args.force:
        print(f"{args.output} exists; not overwriting it (use --force to replace it).", file=sys.stderr)
        return 1
    try:
        template = args.template.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"cannot read template {args.template}: {exc}", file=sys.stderr)
        return 2
    uid = args.airflow_uid if args.airflow_uid is not None else default_airflow_uid()
    content = render(template, airflow_uid=uid)
    try:
        write_env(args.output, content, force=args.force)
    except FileExistsError:
        print(f"{args.output} exists; not overwriting it (use --force to replace it).", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (mode 0600) with new random secrets; AIRFLOW_UID={uid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
