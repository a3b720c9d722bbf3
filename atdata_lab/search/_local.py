"""Searching this index: :class:`LocalSearchBackend` (atdata's name) over ``Index.search(scope="local")``."""

from __future__ import annotations

from typing import Any

from atdata_lab.errors import InvalidArgumentError
from atdata_lab.search._results import SearchResult, SearchResults

__all__ = ["LocalSearchBackend", "result_from_entry"]


def result_from_entry(entry: Any) -> SearchResult:
    """An :class:`~atdata_lab.entry.IndexEntry` as a search result (``source="local"``)."""
    return SearchResult(
        uri=entry.cid,
        name=entry.name,
        description=entry.description,
        tags=list(entry.tags or []),
        schema_ref=entry.schema_ref,
        source="local",
        license=entry.license,
        num_samples=entry.num_samples,
        size_bytes=entry.size_bytes,
        num_shards=len(entry.data_urls),
        storage="local",
        created_at=entry.created_at,
        published_uri=entry.published_uri,
    )


def _offset(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not isinstance(cursor, str) or not cursor.isdigit() or len(cursor) > 18:
        raise InvalidArgumentError(f"cursor={cursor!r:.40}: a local search cursor is a number (an offset)")
    return int(cursor)


class LocalSearchBackend:
    """Search the entries of an :class:`~atdata_lab.index.Index` (no network).

    ``text`` matches name, description and tags (case-insensitive; atdata matches the name only),
    ``tags`` must all be present, ``schema_ref`` is a schema ref or a schema name. Filtering and
    paging happen in the index's provider (SQL for SQLite and Postgres). ``repo`` may name a
    mounted repository (or ``"local"``); a publisher's DID or handle matches no local entry, so it
    returns nothing (atdata ignores ``repo`` here and returns every local match).

    Args:
        index: The index.
    """

    def __init__(self, index: Any) -> None:
        self._index = index

    @property
    def name(self) -> str:
        return "local"

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        """One page of matching local entries; ``cursor`` is the offset of the next page, as a string."""
        offset = _offset(cursor)
        page = self._index.search(
            text, tags=tags, schema=schema_ref, repo=repo, offset=offset, limit=limit, scope="local"
        )
        end = offset + len(page)
        return SearchResults(
            items=list(page.items),
            cursor=str(end) if end < page.total else None,
            total_hint=page.total,
            source="local",
        )

    def health_check(self) -> bool:
        """Always True: the index is here."""
        return True
