"""Searching across publishers: :class:`AppViewSearchBackend` (atdata's name) over an AppView.

It asks the AppView of an :class:`~atdata_lab.atmosphere.Atmosphere` (``appview=`` or
``$ATDATA_APPVIEW_URL``) through :meth:`~atdata_lab.atmosphere.Atmosphere.xrpc_query`, and turns
every entry of the answer into a :class:`SearchResult` only after validating it
(:mod:`atdata_lab.search._validate`); malformed entries are dropped with a logged warning.

Where it falls back to the publisher's PDS, as atdata's loaders do (``DatasetLoader.get`` and
``list_all`` read ``getRecord``/``listRecords`` when the AppView fails):

* :meth:`AppViewSearchBackend.get_entry` (one dataset by at:// URI): when the AppView is
  unavailable, does not know the record, or serves it malformed -> ``getRecord`` on the
  publisher's PDS; the result says ``source="pds"``;
* :meth:`AppViewSearchBackend.search` with ``repo=`` (one publisher's datasets) and the AppView
  unavailable -> that repository's entry records from its PDS, filtered here; ``source="pds"``
  and a warning in ``SearchResults.warnings``.

A search across every publisher cannot fall back (no PDS knows the others): it raises
:class:`~atdata_lab.errors.AppViewUnavailableError`. Nothing is cached from the AppView's answers, so
a later search sees it again as soon as it is back. Publisher handles are resolved (through the
PDS, which knows ``.test`` sandbox handles, or the PLC directory) and kept five minutes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import (
    AppViewError,
    AppViewUnavailableError,
    AtdataLabError,
    InvalidArgumentError,
    RecordNotFoundError,
    RecordValidationError,
)
from atdata_lab.logs import logger
from atdata_lab.search._results import SearchResult, SearchResults
from atdata_lab.search._validate import result_from_record, result_from_view

__all__ = ["AppViewSearchBackend"]

log = logger("atdata_lab.search")

NS = "science.alt.dataset"
#: The AppView answers at most this many entries a request.
MAX_PAGE = 100
#: A search without text lists entries and filters them here: at most this many pages are read.
MAX_LIST_PAGES = 10
#: The PDS fallback reads at most this many of a publisher's entry records.
MAX_PDS_RECORDS = 1000
#: Publisher handles resolved per search at most (the rest stay None), and how long one is kept.
MAX_HANDLE_LOOKUPS = 25
HANDLE_TTL = 300.0
_MAX_CURSOR = 1024

_handles: dict[tuple[str, str], tuple[str, float]] = {}
_handles_lock = threading.Lock()


def _cursor(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value) <= _MAX_CURSOR and value.isprintable():
        return value
    log.warning("ignored a malformed cursor from the %s (%s)", where, type(value).__name__)
    return None


def _limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgumentError(
            f"limit={limit!r:.40}: give a positive int (the AppView answers at most {MAX_PAGE})"
        )
    return min(limit, MAX_PAGE)


def _matches(r: SearchResult, text: str | None, tags: list[str] | None, schema_ref: str | None) -> bool:
    if tags and not set(tags) <= set(r.tags):
        return False
    if schema_ref and r.schema_ref != schema_ref:
        return False
    if text:
        hay = " ".join([r.name, r.description or "", " ".join(r.tags)]).lower()
        return all(word in hay for word in text.lower().split())
    return True


class AppViewSearchBackend:
    """Search datasets of every publisher through an AppView.

    Args:
        atmosphere: An :class:`~atdata_lab.atmosphere.Atmosphere` with an AppView configured
            (logged in or not: searching needs no session).
        resolve_handles: Fill in each result's ``handle`` (cached five minutes; at most
            :data:`MAX_HANDLE_LOOKUPS` new ones per search).
        fallback: Read one publisher's records from its PDS when the AppView is unavailable
            (see the module doc).
    """

    def __init__(self, atmosphere: Any, *, resolve_handles: bool = True, fallback: bool = True) -> None:
        self._atmo = atmosphere
        self._resolve_handles = resolve_handles
        self._fallback = fallback

    @property
    def name(self) -> str:
        return "atmosphere"

    # ------------------------------------------------------------------------------------------

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchResults:
        """One page of datasets matching ``text`` (full text over name, description and tags),
        all ``tags``, ``schema_ref`` (an at:// schema URI) and ``repo`` (a publisher's DID or handle).

        Without ``text`` the AppView's listing is read (newest first) and filtered here.

        Raises:
            AppViewRequiredError: The atmosphere has no AppView.
            AppViewUnavailableError: It cannot be reached and there is no fallback (no ``repo``).
            AppViewError: It refused the query.
        """
        limit = _limit(limit)
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidArgumentError("tags: give a list of strings")
        text = text.strip() if isinstance(text, str) and text.strip() else None
        did = self._did(repo) if repo is not None else None
        try:
            if text is not None:
                items, next_cursor = self._search(text, tags, schema_ref, did, limit, cursor)
            else:
                items, next_cursor = self._list(tags, schema_ref, did, limit, cursor)
        except AppViewUnavailableError as e:
            if did is None or not self._fallback:
                raise
            return self._from_pds(did, text, tags, schema_ref, limit, e)
        # the filters asked for hold for every result, whatever the AppView answered
        kept = [r for r in items if (did is None or r.did == did) and _matches(r, None, tags, schema_ref)]
        if len(kept) < len(items):
            log.warning("dropped %d AppView results outside the filters asked for", len(items) - len(kept))
        self._fill_handles(kept)
        return SearchResults(items=kept, cursor=next_cursor, total_hint=None, source="atmosphere")

    def _query(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._atmo.xrpc_query(f"{NS}.{method}", params)

    def _search(
        self,
        text: str,
        tags: list[str] | None,
        schema_ref: str | None,
        did: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[SearchResult], str | None]:
        out = self._query(
            "searchDatasets",
            {
                "q": text,
                "tags": tags or None,
                "schemaRef": schema_ref,
                "repo": did,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return self._page(out, limit), _cursor(out.get("cursor"), "AppView")

    def _list(
        self, tags: list[str] | None, schema_ref: str | None, did: str | None, limit: int, cursor: str | None
    ) -> tuple[list[SearchResult], str | None]:
        items: list[SearchResult] = []
        for _ in range(MAX_LIST_PAGES):
            out = self._query("listEntries", {"repo": did, "limit": MAX_PAGE, "cursor": cursor})
            page = self._page(out, MAX_PAGE)
            cursor = _cursor(out.get("cursor"), "AppView")
            items += [r for r in page if _matches(r, None, tags, schema_ref)]
            if len(items) >= limit or cursor is None:
                break
        return items[:limit], cursor

    @staticmethod
    def _page(out: dict[str, Any], limit: int) -> list[SearchResult]:
        entries = out.get("entries")
        if not isinstance(entries, list):
            raise AppViewError(f"the AppView answered without an 'entries' list ({type(entries).__name__})")
        if len(entries) > limit:
            log.warning(
                "the AppView answered %d entries for a limit of %d; the rest were dropped",
                len(entries),
                limit,
            )
        seen: set[str] = set()
        items = []
        for view in entries[:limit]:
            r = result_from_view(view)
            if r is not None and r.uri not in seen:
                seen.add(r.uri)
                items.append(r)
        return items

    # ------------------------------------------------------------------------------------------

    def get_entry(self, uri: str) -> SearchResult:
        """One dataset by its at:// URI: from the AppView (``getEntry``), else from the publisher's
        PDS when the AppView is unavailable, does not know it, or serves it malformed
        (``result.source`` says which: ``"atmosphere"`` or ``"pds"``).

        Raises:
            InvalidArgumentError: ``uri`` is not ``at://<did or handle>/science.alt.dataset.entry/<rkey>``.
            RecordNotFoundError: Neither has it.
        """
        try:
            u = rec.AtUri.parse(uri)
        except RecordValidationError as e:
            raise InvalidArgumentError(str(e)) from None
        if u.collection != rec.ENTRY_NSID or not u.rkey:
            raise InvalidArgumentError(f"{uri!r:.200} is not at://<did>/{rec.ENTRY_NSID}/<rkey>")
        did = u.did or self._did(u.authority)
        uri = f"at://{did}/{u.collection}/{u.rkey}"
        if getattr(self._atmo, "has_appview", False):
            try:
                out = self._query("getEntry", {"uri": uri})
                found = result_from_view(out.get("entry"))
                if found is not None and found.uri == uri:
                    self._fill_handles([found])
                    return found
                log.warning("the AppView served %s malformed or as another record; reading the PDS", uri)
            except AppViewUnavailableError as e:
                log.warning("%s; reading %s from its PDS", e, uri)
            except AppViewError as e:
                if e.status not in (400, 404):
                    raise
                log.info("the AppView does not know %s (HTTP %s); reading its PDS", uri, e.status)
        got = self._atmo.get_record(rec.ENTRY_NSID, u.rkey, repo=did)
        if got.get("uri") not in (None, uri):
            raise RecordValidationError(f"the PDS answered {uri} with another record")
        found = result_from_record(uri, got.get("value"), source="pds", cid=got.get("cid"))
        self._fill_handles([found])
        return found

    def _from_pds(
        self,
        did: str,
        text: str | None,
        tags: list[str] | None,
        schema_ref: str | None,
        limit: int,
        why: AppViewUnavailableError,
    ) -> SearchResults:
        log.warning("%s; reading %s's datasets from its PDS instead", why, did)
        items: list[SearchResult] = []
        records = self._atmo.list_all_records(rec.ENTRY_NSID, repo=did, limit=MAX_PDS_RECORDS)
        for got in records:
            try:
                r = result_from_record(got.get("uri"), got.get("value"), source="pds", cid=got.get("cid"))
            except (RecordValidationError, TypeError, ValueError) as e:
                log.warning(
                    "dropped a malformed entry record from the PDS (%.120r): %.200s", got.get("uri"), e
                )
                continue
            if r.did == did and _matches(r, text, tags, schema_ref):
                items.append(r)
        items.sort(key=lambda r: r.created_at or "", reverse=True)
        self._fill_handles(items[:limit])
        return SearchResults(
            items=items[:limit],
            cursor=None,
            total_hint=len(items),
            source="pds",
            warnings=[
                f"{why.url}: the AppView is unavailable ({why.reason}); read {did}'s datasets from its PDS"
            ]
            + (
                [f"only {MAX_PDS_RECORDS} of {did}'s entry records were read"]
                if len(records) >= MAX_PDS_RECORDS
                else []
            ),
        )

    # ------------------------------------------------------------------------------------------

    def _did(self, repo: str) -> str:
        if not isinstance(repo, str) or not repo.strip():
            raise InvalidArgumentError(f"repo={repo!r:.100}: give a DID or a handle")
        repo = repo.strip().lstrip("@")
        if repo.startswith("did:"):
            self._atmo._check_repo(repo, "repo")
            return repo
        return self._atmo.resolve_handle(repo)  # the PDS knows sandbox (.test) handles; the AppView does not

    def _fill_handles(self, items: list[SearchResult]) -> None:
        if not self._resolve_handles or not items:
            return
        now = time.monotonic()
        where = getattr(self._atmo, "pds_url", "")
        lookups = 0
        for r in items:
            if r.did is None or r.handle is not None:
                continue
            key = (where, r.did)
            with _handles_lock:
                hit = _handles.get(key)
            if hit is not None and hit[1] > now:
                r.handle = hit[0]
                continue
            if lookups >= MAX_HANDLE_LOOKUPS:
                continue
            lookups += 1
            try:
                handle = self._atmo.handle_of(r.did)
            except (AtdataLabError, RecordNotFoundError):
                continue
            with _handles_lock:
                if len(_handles) > 10_000:
                    _handles.clear()
                _handles[key] = (handle, now + HANDLE_TTL)
            r.handle = handle
        for r in items:  # one lookup per DID: fill the rest from the cache
            if r.handle is None and r.did is not None:
                with _handles_lock:
                    hit = _handles.get((where, r.did))
                if hit is not None:
                    r.handle = hit[0]

    def health_check(self) -> bool:
        """Whether the AppView answers ``describeService`` now (one request; not remembered)."""
        try:
            self._query("describeService", {})
            return True
        except AtdataLabError:
            return False
