"""What the network knows about a dataset: whether the AppView already indexes a dataset of a given
name from a publisher (the promotion plan asks this), a found dataset's records (entry, schema,
labels, read from its publisher's PDS), and the handles publishers go by.

Everything read here is untrusted: record values are kept as the PDS returned them (bounded by the
transport) and only ever shown escaped; a publisher's handle counts only when it resolves back to
its DID (:meth:`~atdata_lab.atmosphere.Atmosphere.handle_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import errors as _errors
from ..atmosphere import records as rec
from ..errors import AppViewRequiredError, AtdataLabError, InvalidArgumentError
from ..logs import logger
from .published import _get, _reader

__all__ = [
    "APPVIEW_PAGES",
    "AppViewCheck",
    "NetworkRecords",
    "appview_knows",
    "network_records",
    "publisher_handles",
]

log = logger("atdata_lab.promotion")

#: Pages of 100 entries ``appview_knows`` reads of one publisher before it says so (a bound: an
#: AppView that hands out cursors forever is not followed without end).
APPVIEW_PAGES = 20
#: Label records of one publisher read to find a dataset's labels (pages of 100).
LABEL_PAGES = 10


@dataclass(frozen=True)
class AppViewCheck:
    """Whether the AppView already knows a dataset of ``name`` from publisher ``did``.

    Attributes:
        state: ``"known"`` (``uris`` lists its entry records), ``"unknown"``, ``"not configured"``
            (no AppView for this client: set ``ATDATA_APPVIEW_URL``) or ``"unavailable"`` (the
            AppView did not answer; ``detail`` says why).
        name: The dataset name asked about.
        did: The publisher asked about.
        uris: The at:// URIs of the AppView's entries of that name from that publisher.
        appview: The AppView's URL ("" when none is configured).
        detail: Why the AppView could not be asked ("" otherwise).
    """

    state: str
    name: str
    did: str
    uris: tuple[str, ...] = ()
    appview: str = ""
    detail: str = ""

    @property
    def known(self) -> bool:
        return self.state == "known"

    def describe(self) -> str:
        """One line for the plan's summary and the wizard's preview."""
        where = f" ({self.appview})" if self.appview else ""
        if self.state == "known":
            return (
                f"the AppView{where} already knows a dataset named {self.name!r} from {self.did}: "
                + ", ".join(self.uris)
            )
        if self.state == "unknown":
            return f"the AppView{where} knows no dataset named {self.name!r} from {self.did} yet"
        if self.state == "not configured":
            return (
                "no AppView is configured, so whether the network already knows this name is not checked "
                "(set ATDATA_APPVIEW_URL, or start the sandbox with --appview)"
            )
        return f"the AppView{where} could not be asked whether it knows {self.name!r}: {self.detail}"


def _appview_of(atm: Any) -> str:
    if atm is None or not getattr(atm, "has_appview", False):
        return ""
    return str(getattr(atm, "appview_url", "") or "")


def appview_knows(index: Any, name: str, *, did: str | None = None) -> AppViewCheck:
    """Ask the AppView whether it already indexes a dataset called ``name`` published by ``did``
    (default: the index's attached account). Never raises for the AppView's sake: with no AppView
    configured the answer says ``"not configured"``, and when it is down ``"unavailable"`` with the
    reason, so a preview can always show it.

    Reads the publisher's entries from the AppView (``listEntries?repo=<did>``, DIDs because a local
    AppView cannot resolve handles), at most :data:`APPVIEW_PAGES` pages of 100.

    Raises:
        InvalidArgumentError: no ``did`` and no account attached (nothing to ask about).
    """
    own = getattr(index, "atmosphere", None) if index is not None else None
    did = did or (getattr(own, "did", None) if own is not None else None)
    if not did:
        raise InvalidArgumentError(
            "appview_knows needs a publisher: pass did=..., or attach an account to the index"
        )
    # the client search uses: the attached account's AppView, else one for $ATDATA_APPVIEW_URL
    finder = getattr(index, "_network_client", None)
    try:
        atm = finder() if callable(finder) else own
    except AtdataLabError as bad:  # e.g. an ATDATA_APPVIEW_URL that is no URL
        return AppViewCheck("unavailable", name, did, detail=f"{type(bad).__name__}: {bad}")
    appview = _appview_of(atm)
    if atm is None or not appview:
        return AppViewCheck("not configured", name, did)
    nsid = f"{rec.SCHEMA_NSID.rsplit('.', 1)[0]}.listEntries"
    uris: list[str] = []
    cursor: str | None = None
    try:
        for _ in range(APPVIEW_PAGES):
            params: dict[str, Any] = {"repo": did, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            out = atm.xrpc_query(nsid, params=params)
            entries = out.get("entries") if isinstance(out, dict) else None
            if not isinstance(entries, list):
                return AppViewCheck(
                    "unavailable",
                    name,
                    did,
                    appview=appview,
                    detail="its listEntries answer has no entries list",
                )
            for e in entries:
                if isinstance(e, dict) and e.get("name") == name and isinstance(e.get("uri"), str):
                    uris.append(e["uri"])
            nxt = out.get("cursor")
            if not entries or not isinstance(nxt, str) or not nxt or nxt == cursor:
                break
            cursor = nxt
    except (AtdataLabError, OSError) as e:
        if isinstance(e, AppViewRequiredError):
            return AppViewCheck("not configured", name, did)
        log.info("AppView %s did not answer listEntries for %s: %s", appview, did, e)
        return AppViewCheck("unavailable", name, did, appview=appview, detail=f"{type(e).__name__}: {e}")
    return AppViewCheck("known" if uris else "unknown", name, did, tuple(uris), appview)


@dataclass
class NetworkRecords:
    """The records behind a dataset found on the network, as its publisher's PDS holds them.

    Attributes:
        uri: The dataset (entry) record's at:// URI.
        did: The publisher's DID.
        entry: ``{"uri", "cid", "value"}`` of the entry record.
        schema: ``{"uri", "cid", "value"}`` of its schema record, or None (``schema_error`` says why).
        labels: The publisher's label records that name this dataset (``value.datasetUri == uri``).
        schema_error: Why the schema record could not be read ("" when it was).
    """

    uri: str
    did: str
    entry: dict[str, Any]
    schema: dict[str, Any] | None = None
    labels: list[dict[str, Any]] = field(default_factory=list)
    schema_error: str = ""

    @property
    def name(self) -> str:
        v = self.entry.get("value", {}).get("name")
        return v if isinstance(v, str) else ""

    @property
    def schema_ref(self) -> str:
        v = self.entry.get("value", {}).get("schemaRef")
        return v if isinstance(v, str) else ""


def network_records(index: Any, uri: str) -> NetworkRecords:
    """Read the entry record ``uri`` from its publisher's PDS, its schema record and the publisher's
    labels naming it (at most :data:`LABEL_PAGES` pages of label records). Read with the index's
    atmosphere, else an anonymous client on ``ATDATA_PDS_URL``.

    Raises:
        RecordValidationError: ``uri`` is not an entry record URI (checked before any request).
        RecordNotFoundError: the entry record is gone.
    """
    u = rec.AtUri.parse(uri)
    if u.collection != rec.ENTRY_NSID or not u.rkey:
        raise _errors.RecordValidationError(f"{uri!r:.200} is not an at://<did>/{rec.ENTRY_NSID}/<rkey> URI")
    atm = _reader(index)
    entry = _get(atm, uri)
    did = u.authority if u.authority.startswith("did:") else atm.resolve_handle(u.authority)
    out = NetworkRecords(uri=uri, did=did, entry=entry)
    ref = out.schema_ref
    try:
        s = rec.AtUri.parse(ref)
        if s.collection != rec.SCHEMA_NSID:
            raise _errors.RecordValidationError(f"schemaRef {ref!r:.200} is not a schema record URI")
        out.schema = _get(atm, ref)
    except AtdataLabError as e:
        out.schema_error = f"{type(e).__name__}: {e}"
    labels = atm.list_all_records(rec.LABEL_NSID, repo=did, max_pages=LABEL_PAGES)
    out.labels = [
        r for r in labels if isinstance(r.get("value"), dict) and r["value"].get("datasetUri") == uri
    ]
    return out


def publisher_handles(index: Any, dids: Iterable[str]) -> dict[str, str]:
    """``{did: handle}`` for the DIDs whose handle resolves back to them (others are left out: show
    the DID). One ``describeRepo`` (and a handle resolution) per DID."""
    atm = _reader(index)
    found: dict[str, str] = {}
    for did in dict.fromkeys(dids):
        if not isinstance(did, str) or not did.startswith("did:"):
            continue
        try:
            found[did] = atm.handle_of(did)
        except (AtdataLabError, OSError) as e:
            log.debug("no handle for %s: %s", did, e)
    return found
