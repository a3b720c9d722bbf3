"""Several backends, one page: :class:`SearchAggregator` (atdata's name)."""

from __future__ import annotations

from atdata_lab.errors import AppViewError, AtdataLabError
from atdata_lab.logs import logger
from atdata_lab.search._appview import AppViewSearchBackend
from atdata_lab.search._local import LocalSearchBackend
from atdata_lab.search._results import SearchBackend, SearchResult, SearchResults

__all__ = ["SearchAggregator", "deduplicate", "merge_results"]

log = logger("atdata_lab.search")


def deduplicate(items: list[SearchResult]) -> list[SearchResult]:
    """The results without repeats, the first of each kept (backends are asked in order).

    Two results are the same dataset when their ``uri`` is the same (for local results: and their
    name, as two local entries may hold the same content), or when one is a local entry published
    as the other's ``uri``. Unlike atdata, results are not merged by name: names are
    unique per publisher only, so two publishers' "mnist" are two datasets.
    """
    seen: set[str] = set()
    out = []
    for item in items:
        # a local result's uri is its content CID, which two local entries (names) may share
        own = f"local\x00{item.name}\x00{item.uri}" if item.source == "local" else item.uri
        keys = {own} | ({item.published_uri} if item.published_uri else set())
        if keys & seen:
            continue
        seen |= keys
        out.append(item)
    return out


class SearchAggregator:
    """Ask several backends, merge their results, drop repeats (:func:`deduplicate`).

    A backend that fails (or, for backends other than ours, fails its ``health_check``) is skipped
    with a logged warning, and the returned :attr:`SearchResults.warnings` says so; the search goes
    on with the others. Results are ordered as atdata orders them: scored ones first (highest
    first), then by name; at most ``limit`` are returned, ``total_hint`` counts all of them.

    Args:
        backends: The backends, in the order their results win a tie.
    """

    def __init__(self, backends: list[SearchBackend]) -> None:
        self._backends = list(backends)

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        """One merged page (``cursor`` is not used: each backend's first page is merged)."""
        del cursor
        everything: list[SearchResult] = []
        warnings: list[str] = []
        for backend in self._backends:
            # Our backends report trouble from the search itself (one request, not two).
            if (
                not isinstance(backend, (LocalSearchBackend, AppViewSearchBackend))
                and not backend.health_check()
            ):
                log.warning("search backend %s failed its health check, skipped", backend.name)
                warnings.append(f"{backend.name}: failed its health check; its results are missing")
                continue
            try:
                got = backend.search(text=text, tags=tags, schema_ref=schema_ref, repo=repo, limit=limit)
            except AppViewError as e:
                log.warning("search backend %s skipped: %s", backend.name, e)
                warnings.append(f"{e}; the results are from the other backends only")
                continue
            except Exception as e:  # noqa: BLE001 - a backend's failure must not fail the search
                if not isinstance(e, AtdataLabError):
                    log.warning("search backend %s raised, skipped", backend.name, exc_info=True)
                else:
                    log.warning("search backend %s skipped: %s", backend.name, e)
                warnings.append(
                    f"{backend.name}: {type(e).__name__}: {str(e)[:300]}; its results are missing"
                )
                continue
            everything.extend(got.items)
            warnings.extend(got.warnings)
        merged = merge_results([SearchResults(items=everything)], limit)
        merged.warnings = warnings
        return merged


def merge_results(pages: list[SearchResults], limit: int) -> SearchResults:
    """Several backends' pages as one: repeats dropped (:func:`deduplicate`), ordered as atdata
    orders them (scored first, highest first, then by name), at most ``limit``; warnings kept."""
    unique = deduplicate([r for p in pages for r in p.items])
    unique.sort(key=lambda r: (r.score is None, -(r.score or 0.0), r.name))
    return SearchResults(
        items=unique[:limit],
        cursor=None,
        total_hint=len(unique),
        source="aggregated",
        warnings=[w for p in pages for w in p.warnings],
    )
