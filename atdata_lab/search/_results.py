"""What a search returns, and what a search backend is (atdata 0.7's names and fields).

:class:`SearchResult` has atdata's fields (``uri``, ``name``, ``description``, ``tags``,
``schema_ref``, ``source``, ``score``, ``record``) and, after them, what a network result says about
the dataset: publisher ``did``/``handle``, record ``cid``, ``license``, ``num_samples``,
``size_bytes``, ``num_shards``, ``storage`` kind and ``created_at``. Every value has been validated
and bounded by the backend that made it (network answers are untrusted).

``source`` says where a result came from: ``"local"`` (this index), ``"atmosphere"`` (the AppView,
atdata's name for it) or ``"pds"`` (the publisher's PDS, read because the AppView was unavailable
or did not know the record).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["SearchBackend", "SearchResult", "SearchResults"]


@dataclass
class SearchResult:
    """One dataset found by a search.

    Attributes:
        uri: The dataset's at:// URI (network results), or the entry's content CID (local ones, as
            atdata has it).
        name: The dataset's name (unique per publisher, not across publishers).
        description: Its description, if any.
        tags: Its tags.
        schema_ref: Its schema reference (an at:// URI for published datasets).
        source: ``"local"``, ``"atmosphere"`` (the AppView) or ``"pds"`` (see the module doc).
        score: Relevance score, when the backend gives one (the AppView does not).
        record: The (validated) record or entry view it was read from; None for local results.
        did: The publisher's DID (network results).
        handle: The publisher's handle, when it resolves back to ``did``.
        cid: The record's CID (network results, when given).
        license: The license, if any.
        num_samples, size_bytes, num_shards: The size the record declares, when it does.
        storage: ``"http"``, ``"s3"``, ``"blobs"`` or ``"external"`` (network results), or ``"local"``.
        created_at: When the record (or local entry) was created (ISO 8601).
        published_uri: For a local result: the at:// URI it was published as, if it was.
    """

    uri: str
    name: str
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    schema_ref: str | None = None
    source: str = "unknown"
    score: float | None = None
    record: dict[str, Any] | None = None
    did: str | None = None
    handle: str | None = None
    cid: str | None = None
    license: str | None = None
    num_samples: int | None = None
    size_bytes: int | None = None
    num_shards: int | None = None
    storage: str | None = None
    created_at: str | None = None
    published_uri: str | None = None


@dataclass
class SearchResults:
    """One page of search results.

    Attributes:
        items: The results.
        cursor: Where the next page starts (pass it back as ``cursor=``), or None: no more pages.
        total_hint: How many results there are in all, when the backend knows.
        source: ``"local"``, ``"atmosphere"``, ``"pds"`` or ``"aggregated"`` (several backends).
        warnings: What went wrong without failing the search, e.g. ``"the AppView at ... is
            unavailable: ...; these are local results only"`` (an addition to atdata's fields).
    """

    items: list[SearchResult] = field(default_factory=list)
    cursor: str | None = None
    total_hint: int | None = None
    source: str = "unknown"
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[SearchResult]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@runtime_checkable
class SearchBackend(Protocol):
    """What :class:`~atdata_lab.search.SearchAggregator` needs of a backend: a ``name``, a
    ``search`` returning :class:`SearchResults`, and a ``health_check``."""

    @property
    def name(self) -> str:
        """The backend's name (``"local"``, ``"atmosphere"``)."""
        ...

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        """Datasets matching ``text``, all ``tags``, ``schema_ref`` and ``repo`` (one page)."""
        ...

    def health_check(self) -> bool:
        """Whether the backend can answer now."""
        ...
