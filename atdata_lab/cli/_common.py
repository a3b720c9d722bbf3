"""What the command groups share: the ``--index`` option, what a TARGET names, the reader of
published records, and keeping secrets out of what is printed."""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdata_lab.errors import InvalidArgumentError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "IndexSpec",
    "UsageError",
    "add_index_option",
    "emit",
    "index_spec",
    "open_index",
    "optional_index",
    "published_atmosphere",
    "published_reader",
    "redact",
    "secret_values",
    "split_local",
    "target_kind",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Environment variables whose values are secrets: never printed, and cut out of error messages.
SECRET_ENV = ("ATDATA_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class UsageError(InvalidArgumentError):
    """What was typed on the command line cannot work (exit code 2)."""


def add_index_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index",
        metavar="PATH|URL",
        default=None,
        help="the index: its SQLite file (or the folder holding index.db), or a redis:// URL "
        "(default: $ATDATA_HOME/index.db, i.e. ~/.atdata/index.db)",
    )


# ---------------------------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexSpec:
    """Which index a command uses.

    Attributes:
        kind: ``sqlite`` or ``redis``.
        where: The SQLite file, or the Redis URL with its password masked (safe to print).
        url: The Redis URL as given (may hold a password: never print it).
        source: ``--index`` or ``$ATDATA_HOME`` (or ``~/.atdata`` when it is not set).
    """

    kind: str
    where: str
    url: str = ""
    source: str = ""

    @property
    def exists(self) -> bool:
        """A SQLite index exists once its file does (a Redis index: asked by connecting)."""
        return self.kind != "sqlite" or Path(self.where).is_file()


def index_spec(given: str | None) -> IndexSpec:
    """The index ``--index`` names (None: the default, ``$ATDATA_HOME/index.db``)."""
    from atdata_lab.stores.local import atdata_home
    from atdata_lab.views.text import masked_url

    if given is None:
        source = "$ATDATA_HOME" if os.environ.get("ATDATA_HOME") else "default (~/.atdata)"
        return IndexSpec("sqlite", str(atdata_home() / "index.db"), source=source)
    if given.startswith(_REDIS_SCHEMES):
        return IndexSpec("redis", masked_url(given), url=given, source="--index")
    if "://" in given:
        raise UsageError(
            f"--index {masked_url(given)}: use a SQLite file path or a redis:// URL "
            "(PostgreSQL indexes are not available yet)"
        )
    path = Path(given).expanduser()
    if path.is_dir():
        path = path / "index.db"
    return IndexSpec("sqlite", str(path.resolve()), source="--index")


def open_index(spec: IndexSpec, *, timeout: float = 5.0) -> Any:
    """The :class:`~atdata_lab.index.Index` of ``spec``; a SQLite file must exist (a command that
    only reads never creates an empty index where a typo pointed)."""
    from atdata_lab.index import Index

    if spec.kind == "redis":
        try:
            import redis
        except ImportError:
            raise UsageError("a Redis index needs redis-py: pip install 'atdata-lab[redis]'") from None
        # a client, not the URL: the provider names it by host/port/db then, never with its password
        client = redis.Redis.from_url(
            spec.url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 30)
        )
        return Index(redis=client)
    if not spec.exists:
        hint = (
            "check the path"
            if spec.source == "--index"
            else "write a dataset first (atdata.Index().write(...)) or pass --index PATH"
        )
        raise UsageError(f"no index at {spec.where} ({spec.source}): {hint}")
    try:
        return Index(path=spec.where)
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{spec.where} is not an atdata-lab index (SQLite says: {e})") from None


def optional_index(index_arg: str | None) -> Any:
    """The index when one is named or exists (it caches published schemas), else None."""
    spec = index_spec(index_arg)
    return open_index(spec) if index_arg is not None or spec.exists else None


def split_local(target: str) -> str:
    """``@local/name -> name`` (checked: a name is there)."""
    name = target[len("@local/") :]
    if not name or any(ord(c) < 0x20 for c in name):
        raise UsageError(f"{target!r:.200} is not '@local/NAME'")
    return name


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def target_kind(target: str) -> str:
    """What a TARGET names: ``local`` (``@local/name``, an entry of the index), ``published``
    (``at://...`` or ``@handle/name[@version]``, checked for syntax here) or ``path`` (shard
    files: a path, glob, brace pattern or fsspec URL)."""
    if not target:
        raise UsageError("the target is empty: give a path, @local/NAME, at://... or @handle/NAME")
    if target.startswith("@local/"):
        return "local"
    if target.startswith("at://"):
        from atdata_lab.atmosphere.records import AtUri
        from atdata_lab.errors import RecordValidationError

        try:
            u = AtUri.parse(target)
        except RecordValidationError as e:
            raise UsageError(str(e)) from None
        if not u.collection or not u.rkey:
            raise UsageError(f"{target!r:.200} is not at://<did or handle>/<collection>/<rkey>")
        return "published"
    if target.startswith("@"):
        if not re.fullmatch(r"@[^/\s]+/[^\s]+", target):
            raise UsageError(f"{target!r:.200} is not '@handle/NAME' or '@handle/NAME@VERSION'")
        return "published"
    return "path"


def published_reader() -> Any:
    """An anonymous :class:`~atdata_lab.atmosphere.Atmosphere` on ``$ATDATA_PDS_URL`` (as the
    library reads published records when no account is attached)."""
    url = os.environ.get("ATDATA_PDS_URL")
    if not url:
        raise UsageError(
            "cannot read published datasets: set ATDATA_PDS_URL to the PDS that holds them "
            '(for the sandbox: eval "$(atdata-lab sandbox start)")'
        )
    from atdata_lab.atmosphere import Atmosphere

    return Atmosphere(url, timeout=30.0)


def published_atmosphere(index: Any) -> Any:
    """The index's attached account, else an anonymous reader on ``$ATDATA_PDS_URL``."""
    atm = getattr(index, "atmosphere", None)
    return atm if atm is not None else published_reader()


# ---------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------
def secret_values() -> list[str]:
    """The secrets this process knows from its environment (longest first)."""
    values = {os.environ.get(k, "") for k in SECRET_ENV}
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)(?P<pw>[^\s/@]+)(?=@)", re.I)


def emit(text: str) -> None:
    """Print ``text`` (a command's output) with :func:`redact` applied."""
    print(redact(text))


def redact(text: str) -> str:
    """``text`` with every secret of the environment and every URL password shown as ``***``."""
    for v in secret_values():
        text = text.replace(v, "***")
    return _URL_PASSWORD.sub(lambda m: m.group("pre") + "***", text)
