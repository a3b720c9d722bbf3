"""The index provider interface, written once; SQLite, Redis and PostgreSQL implement it.

Rows are plain dicts. An *entry row* has the keys of :data:`ENTRY_KEYS`; a *shard row*
``url, entry, checksum, size, num_samples, offsets`` (offsets: packed offset index); a
*schema row* ``ref, name, version, content_cid, record, created_at, published_uri``.
Every multi-key write is atomic. Backends opt into ``tests/conformance/`` to prove they
behave alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..errors import AtdataLabError

__all__ = ["IndexProvider", "IndexUnavailableError", "ENTRY_KEYS", "SORT_COLUMNS", "search_text"]


class IndexUnavailableError(AtdataLabError, ConnectionError):
    """The index server (Redis, PostgreSQL) cannot be reached; the message names it and the fix."""


ENTRY_KEYS = (
    "name",
    "cid",
    "schema_ref",
    "data_urls",
    "num_samples",
    "num_shards",
    "size_bytes",
    "shard_checksums",
    "metadata",
    "description",
    "tags",
    "license",
    "created_at",
    "published_uri",
)
# Columns the index can sort by (the browser sorts by any of them). "tags" sorts by the first tag.
SORT_COLUMNS = (
    "name",
    "created_at",
    "num_samples",
    "num_shards",
    "size_bytes",
    "schema_ref",
    "license",
    "published_uri",
    "tags",
)


def search_text(row: dict[str, Any]) -> str:
    """The lower-cased text searched by ``search(text=...)``: name, description, tags."""
    return " ".join([row["name"], row.get("description") or "", " ".join(row.get("tags") or [])]).lower()


class IndexProvider(ABC):
    """Storage of entries, shards, schemas and small state records."""

    kind: str = "?"

    # -- entries
    @abstractmethod
    def put_entry(self, row: dict[str, Any], shards: list[dict[str, Any]], *, replace: bool = False) -> None:
        """Store an entry and its shard rows atomically.

        Raises:
            EntryConflictError: the name exists and ``replace`` is false.
        """

    @abstractmethod
    def get_entry(self, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def get_entry_by_cid(self, cid: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def update_entry(self, name: str, **fields: Any) -> None:
        """Change some fields of an entry (e.g. ``published_uri``, or ``data_urls`` after a copy:
        shard rows of URLs no entry uses any more are dropped)."""

    @abstractmethod
    def delete_entry(self, name: str) -> dict[str, Any] | None:
        """Remove an entry (and the shard rows no other entry uses); return the removed row."""

    @abstractmethod
    def search(
        self,
        *,
        text: str | None = None,
        tags: list[str] | None = None,
        schema: str | None = None,
        published: bool | None = None,
        sort: str = "created_at",
        descending: bool = True,
        offset: int = 0,
        limit: int | None = 25,
    ) -> tuple[list[dict[str, Any]], int]:
        """Filter, sort and page entries on the provider's side. Returns (rows, total)."""

    @abstractmethod
    def urls_in_use(self, urls: list[str], *, exclude: str | None = None) -> set[str]:
        """Those of ``urls`` that some entry (other than ``exclude``) references."""

    @abstractmethod
    def get_shards(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        """Shard rows for the URLs that have one."""

    @abstractmethod
    def get_shard_counts(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        """Shard rows for the URLs that have one, without their offset indexes: ``url``,
        ``checksum``, ``size``, ``num_samples`` and ``has_offsets`` (the row has an offset index,
        which :meth:`get_shards` gives). Cheap for many shards: a Dataset learns its counts here
        and fetches one shard's offsets when that shard is first used for random access."""

    @abstractmethod
    def put_shards(self, shards: list[dict[str, Any]]) -> None:
        """Store shard rows (offset indexes of shards scanned later, or moved)."""

    # -- schemas
    @abstractmethod
    def put_schema(self, row: dict[str, Any]) -> bool:
        """Store a schema row unless its ref exists. Returns True when stored."""

    @abstractmethod
    def get_schema(self, ref: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_schemas(self, name: str | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    def update_schema(self, ref: str, **fields: Any) -> None: ...

    # -- small state records (promotion intents, published records)
    @abstractmethod
    def get_state(self, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_state(self, key: str, value: dict[str, Any] | None) -> None:
        """Store (or with ``None``, delete) a small JSON record."""

    @abstractmethod
    def list_state(self, prefix: str) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def generation(self) -> int:
        """A number that grows whenever anything is written (by any process)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
