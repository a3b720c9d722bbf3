"""The ATProto client: login, sessions, records, blobs and identity, on the ``atproto`` SDK.

:class:`Atmosphere` wraps the MarshalX ``atproto`` SDK's :class:`atproto.Client` (which owns the
session and refreshes expired access tokens) and adds what a data tool needs. The transport (every
request, its retries, the token refresh, the error mapping and the response bounds) is its base
class, :class:`~atdata_lab.atmosphere._http.XrpcClientBase`; this module holds identity, records
and blobs on top of it:

* plain-dict records in and out: record operations return ``{"uri", "cid", "value"}``, except
  where atdata 0.7's client returns something else, which is returned here too (``get_record(at_uri)``
  gives the record value and ``list_records`` one page ``(values, cursor)``, values as
  :class:`RecordValue` dicts that keep their ``.uri`` and ``.cid``; ``list_all_records`` follows
  the cursors); where both call forms exist, a mix of them is refused before any request;
* atdata's AppView reads (``search_datasets``, ``get_entries``, ``get_entry_stats``,
  ``search_lenses``) with every item validated like any network record, malformed ones dropped;
* one error family (:mod:`atdata_lab.errors`), each :class:`~atdata_lab.errors.RequestError`
  carrying the server's answer as a :class:`PDSResponse` (``status_code``, ``headers``,
  ``content``, ``error``, ``message``);
* bounded retries with exponential backoff for 5xx, 429 and dropped connections, honouring
  ``retry-after`` and ``ratelimit-reset``. Writes are retried only when that is safe (see below);
* ``round_trips``: the number of HTTP requests sent to PDSes (login, token refresh, reads and
  writes alike) — read it, or reset it to 0, to prove how many a piece of work needed;
* local validation before any write: the ATProto data model (no floats) and, for the
  ``science.alt.dataset.*`` collections, the bundled lexicons, plus the 1,000,000-byte body cap.

Retry safety of writes:

* :meth:`Atmosphere.create_record` always sends a record key (a client-made TID when you pass
  none), so a retried create can tell "my first attempt landed" from a conflict: if the key
  already holds a record whose CID equals the CID of what we sent (computed locally,
  :func:`~atdata_lab.atmosphere.records.record_cid`), the create succeeded; otherwise
  :class:`~atdata_lab.errors.RecordConflictError`. This also makes a repeated create with the
  same key and content idempotent.
* :meth:`Atmosphere.put_record` is idempotent (same value, same result); with ``swap_record``, a
  retry that meets ``InvalidSwap`` checks whether the record now holds exactly our value.
* :meth:`Atmosphere.apply_writes` fills in TIDs for creates without an rkey; a retry that fails
  because the batch already landed is verified record by record (a few extra reads, only then).
* A 429 means the server did not act, so every request may be retried after it.

Thread-safe: requests from several threads are serialised by a per-client lock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import unquote, urlencode

import httpx

from atdata_lab._journal import temp_name
from atdata_lab.atmosphere._appview import AppViewClient
from atdata_lab.atmosphere._http import _LOGIN_HINT, PDSResponse, _norm_url, _same_server
from atdata_lab.atmosphere.lexicon import (
    _CID_RE,
    _NSID_RE,
    _is_did,
    _is_handle,
    bundled_lexicons,
    check_data_model,
    record_json_size,
)
from atdata_lab.atmosphere.records import (
    ENTRY_NSID,
    LABEL_NSID,
    LENS_NSID,
    SCHEMA_NSID,
    AtUri,
    is_valid_rkey,
    make_tid,
    record_cid,
)
from atdata_lab.cid import parse_blob_cid
from atdata_lab.errors import (
    AppViewError,
    AuthenticationError,
    BlobMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    PDSUnavailableError,
    RecordConflictError,
    RecordNotFoundError,
    RecordSizeError,
    RecordTooLargeError,
    RecordValidationError,
    RequestError,
    ResponseTooLargeError,
    StoreError,
)
from atdata_lab.logs import logger
from atdata_lab.progress import ProgressEvent, ProgressLike, resolve_progress
from atdata_lab.urls import check_remote_url

__all__ = [
    "Atmosphere",
    "PDSResponse",
    "RecordValue",
    "DEFAULT_BLOB_UPLOAD_LIMIT",
    "MAX_APPLY_WRITES",
    "logged_in_dids",
]

log = logger("atdata_lab.atmosphere")

#: The reference PDS's default ``blobUploadLimit`` (5 MB) — used when the server does not say.
DEFAULT_BLOB_UPLOAD_LIMIT = 5 * 1024 * 1024
#: applyWrites takes at most 200 writes per call.
MAX_APPLY_WRITES = 200
#: createRecord/putRecord/applyWrites JSON bodies are capped at 1,000,000 bytes (PDS 0.5.x).
MAX_BODY_BYTES = 1_000_000
#: ``list_all_records`` follows at most this many cursors (100 records a page) unless told otherwise.
MAX_LIST_PAGES = 1000
#: The largest blob downloaded unless ``max_bytes`` says otherwise.
MAX_BLOB_BYTES = 4 << 30

#: The AppView answers at most this many items a request (searchDatasets, searchLenses, getEntries: 25).
MAX_APPVIEW_PAGE = 100
MAX_GET_ENTRIES = 25
_MAX_CURSOR = 1024

_sessions: weakref.WeakSet[Atmosphere] = weakref.WeakSet()


class RecordValue(dict[str, Any]):
    """A record's value (a plain dict, as atdata's client returns it) that also remembers where it
    came from: ``.uri`` (its at:// URI) and ``.cid`` (as the server stated it; None if it did not).

    Returned by :meth:`Atmosphere.get_record` given an at:// URI, by
    :meth:`Atmosphere.list_records`, and by ``list_schemas``/``list_datasets``/
    ``list_lenses``/``list_labels``.
    """

    def __init__(self, value: Mapping[str, Any], *, uri: str, cid: str | None) -> None:
        super().__init__(value)
        self.uri = uri
        self.cid = cid if isinstance(cid, str) else None


@dataclass(frozen=True)
class WrittenRecord(AtUri, Mapping[str, Any]):
    """What :meth:`Atmosphere.create_record` and :meth:`Atmosphere.put_record` return: the record's
    AT URI, as atdata's client returns it (``str(out)``, ``out.authority``, ``out.collection``,
    ``out.rkey``), with the written ``.cid`` and ``.value``.

    It also reads as the ``{"uri", "cid", "value"}`` mapping the rest of this client returns
    (``out["uri"]`` is ``str(out)``; ``dict(out)`` gives the mapping).
    """

    cid: str | None = field(default=None, compare=False)
    value: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, written: Mapping[str, Any]) -> WrittenRecord:
        u = AtUri.parse(written["uri"])
        return cls(u.authority, u.collection, u.rkey, cid=written.get("cid"), value=written["value"])

    def __getitem__(self, key: str) -> Any:
        if key == "uri":
            return str(self)
        if key in ("cid", "value"):
            return getattr(self, key)
        raise NotFoundError(f"a written record has 'uri', 'cid' and 'value', not {key!r:.60}")

    def __iter__(self) -> Iterator[str]:
        return iter(("uri", "cid", "value"))

    def __len__(self) -> int:
        return 3


def _good_cursor(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_CURSOR and value.isprintable()


def _check_cid(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 256 or not _CID_RE.match(value):
        raise InvalidArgumentError(f"{where}={value!r:.80}: not a CID (e.g. bafyrei...)")
    return value


def _positive_limit(limit: Any, most: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgumentError(
            f"limit={limit!r:.40}: give a positive int (the AppView answers at most {most})"
        )
    return min(limit, most)


def logged_in_dids() -> set[str]:
    """The DIDs of the accounts logged in in this process (clients not closed): "you" to the trust
    policy, whose records may name local files and internal hosts (see :class:`~atdata_lab.urls.TrustPolicy`)."""
    return {a.did for a in list(_sessions) if a.did}


class Atmosphere(AppViewClient):
    """A logged-in (or anonymous) connection to an ATProto PDS.

    Create one with :meth:`login`, :meth:`from_env` or :meth:`from_session`. The password is used
    once, to create the session, and never stored; ``repr()`` shows handle, DID and PDS URL only.

    Args:
        base_url: The PDS base URL (e.g. ``http://127.0.0.1:2583``; atdata's name). Default:
            ``pds_url``, else ``$ATDATA_PDS_URL``, else ``https://bsky.social`` (as atdata).
        pds_url: The same, by our name.
        plc_url: PLC directory for DID resolution; default ``$ATDATA_PLC_URL`` or
            ``https://plc.directory``.
        timeout: Per-request timeout in seconds (connect timeout is at most 5 s).
        max_tries: Attempts per request for retryable failures (5xx, 429, dropped connections).
        max_wait: Upper bound, in seconds, on the total time spent waiting between retries of one
            request; a 429 whose reset lies beyond it raises :class:`RateLimitedError` at once.
        backoff: First backoff delay in seconds (doubles each retry, with +-20 % jitter).
        transport: An ``httpx`` transport for every PDS request (for fault-injection tests).
        appview: The AppView for :meth:`xrpc_query` and search across publishers: an ``http(s)://``
            URL or a ``did:web:`` DID; default ``$ATDATA_APPVIEW_URL`` (or ``$ATDATA_APPVIEW``);
            ``""`` for none.

    Attributes:
        round_trips: HTTP requests sent to PDSes so far (an int; the caller may reset it).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        pds_url: str | None = None,
        plc_url: str | None = None,
        timeout: float = 30.0,
        max_tries: int = 4,
        max_wait: float = 30.0,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        appview: str | None = None,
    ) -> None:
        super().__init__(
            pds_url or base_url or os.environ.get("ATDATA_PDS_URL") or "https://bsky.social",
            appview=appview,
            timeout=timeout,
            max_tries=max_tries,
            max_wait=max_wait,
            backoff=backoff,
            transport=transport,
        )
        self._plc_url = plc_url or os.environ.get("ATDATA_PLC_URL") or None
        self._did_cache: dict[str, str] = {}
        self._pds_cache: dict[str, str] = {}
        self._server_info: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------------------
    # construction and sessions
    # ------------------------------------------------------------------------------------------

    @classmethod
    def login(
        cls,
        handle: str,
        password: str,
        *,
        pds_url: str | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> Atmosphere:
        """Log in with a handle (or DID) and an (app) password.

        Args:
            handle: The account's handle, e.g. ``alice.example.com``, or its DID.
            password: Account or app password. Used once; never stored, logged or shown.
            pds_url: The PDS URL. Default: ``$ATDATA_PDS_URL``, else resolved the standard way
                (handle -> DID via DNS TXT ``_atproto.<handle>`` or
                ``https://<handle>/.well-known/atproto-did`` -> DID document -> ``#atproto_pds``).
            base_url: atdata's name for ``pds_url``.
            **options: Passed to :class:`Atmosphere` (``plc_url``, ``timeout``, ``max_tries``...).

        Returns:
            A logged-in client.

        Raises:
            AuthenticationError: Wrong handle or password (the message never contains it).
            PDSUnavailableError: The PDS cannot be reached.
        """
        pds_url = pds_url or base_url or os.environ.get("ATDATA_PDS_URL") or None
        pinned = pds_url is not None
        if pds_url is None:
            pds_url = cls._discover_pds(handle, options.get("plc_url"))
        self = cls(pds_url, **options)
        self._pinned = pinned
        failure = self._create_session(handle, password)
        password = ""  # drop the only reference we hold
        del password
        if failure is not None:
            raise failure
        _sessions.add(self)
        log.debug("logged in as %s (%s) on %s", self.handle, self.did, self.pds_url)
        return self

    @classmethod
    def from_env(cls, **options: Any) -> Atmosphere:
        """Log in from ``ATDATA_HANDLE``, ``ATDATA_PASSWORD`` and (optional) ``ATDATA_PDS_URL``.

        Raises:
            AuthenticationError: A variable is missing, or the login failed.
        """
        handle = os.environ.get("ATDATA_HANDLE")
        if not handle or not os.environ.get("ATDATA_PASSWORD"):
            raise AuthenticationError(
                "set ATDATA_HANDLE and ATDATA_PASSWORD (and ATDATA_PDS_URL for a local PDS)"
            )
        return cls.login(
            handle, os.environ["ATDATA_PASSWORD"], pds_url=os.environ.get("ATDATA_PDS_URL"), **options
        )

    @classmethod
    def from_session(cls, session_string: str, *, pds_url: str | None = None, **options: Any) -> Atmosphere:
        """Resume a session exported with :meth:`export_session` (no password needed).

        The session is checked with one ``getSession`` request (refreshing the access token if
        it has expired).

        Args:
            session_string: From :meth:`export_session`, or the contents of :meth:`save_session`'s file.
            pds_url: Override the PDS URL stored in the session.

        Raises:
            AuthenticationError: The string is malformed, or the session was revoked/expired.
        """
        from atproto_client.client.session import Session

        session_string = session_string.strip()
        try:
            sess = Session.decode(session_string)
        except Exception:
            raise AuthenticationError(
                "not a session string (expected the output of export_session())"
            ) from None
        base = pds_url or os.environ.get("ATDATA_PDS_URL") or sess.pds_endpoint
        if not base:
            raise AuthenticationError("the session string names no PDS: pass pds_url=")
        self = cls(base, **options)
        self._pinned = pds_url is not None or bool(os.environ.get("ATDATA_PDS_URL"))
        try:
            kwargs = self._login_kwargs()
            if kwargs:
                self._sdk.login(session_string=session_string, **kwargs)
            else:
                self._sdk._import_session_string(session_string)
        except Exception:
            raise AuthenticationError("could not import the session string: " + _LOGIN_HINT) from None
        info = self._call("query", "com.atproto.server.getSession", op="check the session")
        if isinstance(info, dict) and info.get("handle") and self._sdk._session is not None:
            self._sdk._session.handle = info["handle"]
        _sessions.add(self)
        return self

    def export_session(self) -> str:
        """The session as a string (handle, DID, tokens, PDS) for :meth:`from_session`.

        Treat it like a password: it grants access to the account until revoked or expired.
        """
        if self._sdk._session is None:
            raise AuthenticationError("not logged in")
        return self._sdk.export_session_string()

    def save_session(self, path: str | os.PathLike[str], *, keep_updated: bool = False) -> Path:
        """Write :meth:`export_session` to ``path`` with mode 0600 (owner read/write only).

        Args:
            path: The file to (over)write.
            keep_updated: Also rewrite the file whenever the SDK refreshes the tokens (refresh
                tokens rotate, so an old saved session stops working after a refresh).

        Returns:
            The path written.
        """
        p = Path(path).expanduser()
        self._write_session_file(p, self.export_session())
        if keep_updated and p not in self._session_files:
            self._session_files.append(p)
        return p

    @staticmethod
    def _discover_pds(handle: str, plc_url: str | None) -> str:
        from atproto_identity.resolver import IdResolver

        resolver = IdResolver(plc_url=plc_url or os.environ.get("ATDATA_PLC_URL") or None)
        did = handle if handle.startswith("did:") else None
        if did is None:
            try:
                did = resolver.handle.resolve(handle)
            except Exception:
                did = None
        if not did:
            raise AuthenticationError(
                f"cannot resolve the handle {handle!r} to a DID (DNS TXT _atproto.{handle} and "
                f"https://{handle}/.well-known/atproto-did both failed): pass pds_url= or set ATDATA_PDS_URL"
            )
        try:
            doc = resolver.did.resolve(did)
            endpoint = doc.get_pds_endpoint() if doc is not None else None
        except Exception:
            endpoint = None
        if not endpoint:
            raise PDSUnavailableError(
                f"cannot find the PDS of {did} (no #atproto_pds service in its DID document): pass pds_url="
            )
        return _norm_url(endpoint)

    def close(self) -> None:
        """Close the HTTP connections (and stop counting as a logged-in account of this process)."""
        _sessions.discard(self)
        super().close()

    def __enter__(self) -> Atmosphere:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Atmosphere(handle={self.handle!r}, did={self.did!r}, pds_url={self.pds_url!r})"

    __str__ = __repr__

    def __getstate__(self) -> Any:
        raise InvalidTypeError("Atmosphere holds a live session and cannot be pickled; use export_session()")

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------

    @property
    def did(self) -> str | None:
        """The logged-in account's DID (None when anonymous)."""
        s = self._sdk._session
        return s.did if s is not None else None

    @property
    def handle(self) -> str | None:
        """The logged-in account's handle (None when anonymous)."""
        s = self._sdk._session
        return s.handle if s is not None else None

    @property
    def pds_url(self) -> str:
        """The PDS base URL requests go to."""
        return self._pds_url

    @property
    def is_authenticated(self) -> bool:
        """Whether this client holds a logged-in session (atdata's name; ``did`` is None otherwise)."""
        return self.did is not None

    def _require_login(self, what: str) -> str:
        did = self.did
        if did is None:
            raise AuthenticationError(f"{what} needs a logged-in session: {_LOGIN_HINT}")
        return did

    # ------------------------------------------------------------------------------------------
    # transport: counting, retries, error mapping
    # ------------------------------------------------------------------------------------------

    # ------------------------------------------------------------------------------------------
    # identity
    # ------------------------------------------------------------------------------------------

    def resolve_handle(self, handle: str) -> str:
        """Resolve a handle to its DID.

        Asks the PDS first (``com.atproto.identity.resolveHandle``: it knows its own accounts,
        including ``.test`` sandbox handles, and resolves others the standard way), then falls
        back to the SDK's resolver (DNS TXT ``_atproto.<handle>``, then
        ``https://<handle>/.well-known/atproto-did``). A DID is returned unchanged.

        Raises:
            RecordNotFoundError: The handle does not resolve.
        """
        self._check_repo(handle, "handle")
        if handle.startswith("did:"):
            return handle
        handle = handle.lstrip("@").lower()
        if handle == (self.handle or "").lower() and self.did:
            return self.did
        if handle in self._did_cache:
            return self._did_cache[handle]
        did: str | None = None
        try:
            out = self._call(
                "query",
                "com.atproto.identity.resolveHandle",
                params={"handle": handle},
                op=f"resolve the handle {handle!r}",
            )
            did = out.get("did") if isinstance(out, dict) else None
        except (RequestError, PDSUnavailableError):
            did = None
        if not did:
            from atproto_identity.resolver import IdResolver

            try:
                did = IdResolver(plc_url=self._plc_url, timeout=5.0).handle.resolve(handle)
            except Exception:
                did = None
        if not did:
            raise RecordNotFoundError(f"the handle {handle!r} does not resolve to a DID")
        self._did_cache[handle] = did
        return did

    def resolve_did(self, handle_or_did: str) -> str:
        """A handle's DID, or a DID unchanged (atdata's name for :meth:`resolve_handle`).

        Raises:
            RecordNotFoundError: The handle does not resolve.
        """
        return self.resolve_handle(handle_or_did)

    def handle_of(self, did: str) -> str:
        """The handle ``did`` goes by: the one its repository (or DID document) names, accepted only
        when it resolves back to ``did`` (anyone can claim any handle).

        Raises:
            RecordNotFoundError: No handle, or the handle does not resolve back to ``did``.
        """
        if did == self.did and self.handle:
            return self.handle
        handle: str | None = None
        with contextlib.suppress(RequestError, PDSUnavailableError):
            out = self._call(
                "query", "com.atproto.repo.describeRepo", params={"repo": did}, op=f"describe the repo {did}"
            )
            handle = out.get("handle") if isinstance(out, dict) else None
        if not isinstance(handle, str) or not handle:
            from atproto_identity.resolver import IdResolver

            try:
                doc = IdResolver(plc_url=self._plc_url, timeout=5.0).did.resolve(did)
                aliases = list(doc.also_known_as or []) if doc is not None else []
            except Exception:
                aliases = []
            handle = next(
                (a[len("at://") :] for a in aliases if isinstance(a, str) and a.startswith("at://")), None
            )
        if not handle or self.resolve_handle(handle) != did:
            raise RecordNotFoundError(f"{did} has no handle that resolves back to it")
        return handle

    def get_repo_pds(self, did: str, *, trust: Any = None) -> str:
        """The PDS URL hosting ``did``'s repository (from its DID document).

        Our own DID answers our PDS URL. Otherwise the DID document is read from our PDS when it
        hosts that repo (``describeRepo``), else resolved via the PLC directory (``plc_url``) or
        did:web.

        Raises:
            RecordNotFoundError: The DID cannot be resolved or names no PDS.
        """
        self._check_repo(did, "did")
        did = self.resolve_handle(did) if not did.startswith("did:") else did
        if did == self.did:
            return self._pds_url
        if did in self._pds_cache:
            return self._pds_cache[did]
        endpoint: str | None = None
        unreachable: PDSUnavailableError | None = None
        try:  # our PDS knows the DID documents of the repos it hosts
            out = self._call(
                "query", "com.atproto.repo.describeRepo", params={"repo": did}, op=f"describe the repo {did}"
            )
        except PDSUnavailableError as e:
            unreachable, out = e, None
        except RequestError:
            out = None
        if isinstance(out, dict) and isinstance(out.get("didDoc"), dict):
            from atproto_core.did_doc import DidDocument

            with contextlib.suppress(Exception):
                endpoint = DidDocument.from_dict(out["didDoc"]).get_pds_endpoint()
            if endpoint and _same_server(endpoint, self._pds_url):
                endpoint = self._pds_url
        if not endpoint:
            from atproto_identity.resolver import IdResolver

            if did.startswith("did:web:"):  # resolving it fetches https://<its host>/.well-known/did.json
                host = unquote(did[len("did:web:") :].split(":", 1)[0])
                check_remote_url(
                    f"https://{host}/", trusted=trust, record_uri=f"the DID {did}", what="did:web host"
                )
            try:
                doc = IdResolver(plc_url=self._plc_url, timeout=5.0).did.resolve(did)
                endpoint = doc.get_pds_endpoint() if doc is not None else None
            except Exception:
                endpoint = None
        if not endpoint and unreachable is not None:
            raise unreachable
        if not endpoint:
            raise RecordNotFoundError(
                f"cannot find the PDS of {did}: its DID document did not resolve "
                "(for a local PLC directory set ATDATA_PLC_URL)"
            )
        endpoint = _norm_url(endpoint)
        self._pds_cache[did] = endpoint
        return endpoint

    def _repo_target(self, repo: str | None, what: str, *, trust: Any = None) -> tuple[str, str | None]:
        """(repo DID, base URL of its PDS or None for our own PDS).

        Another PDS (named by the repo's DID document, i.e. chosen by the repo's owner) must pass
        the trust policy (``trust``, default from the environment): no internal addresses."""
        if repo is None:
            return self._require_login(what), None
        self._check_repo(repo, "repo")
        if repo == self.did or (self.handle and repo.lstrip("@").lower() == self.handle.lower()):
            return self.did or repo, None
        did = self.resolve_handle(repo)
        if did == self.did:
            return did, None
        pds = self.get_repo_pds(did, trust=trust)
        if _same_server(pds, self._pds_url):
            return did, None
        check_remote_url(pds, trusted=trust, record_uri=f"the DID document of {did}", what="PDS")
        return did, pds

    # ------------------------------------------------------------------------------------------
    # server
    # ------------------------------------------------------------------------------------------

    def describe_server(self) -> dict[str, Any]:
        """``com.atproto.server.describeServer``, plus ``blobUploadLimit`` (bytes).

        The reference PDS does not report its blob limit; then ``blobUploadLimit`` is
        :data:`DEFAULT_BLOB_UPLOAD_LIMIT` (5 MB, the PDS default) and ``blobUploadLimitSource`` is
        ``"default"`` (``"server"`` when the server said).
        """
        out = self._call("query", "com.atproto.server.describeServer", op="describe the server")
        info = dict(out) if isinstance(out, dict) else {}
        limits: dict[str, Any] = info["limits"] if isinstance(info.get("limits"), dict) else {}
        limit = info.get("blobUploadLimit", limits.get("blobUploadLimit"))
        if isinstance(limit, int) and limit > 0:
            info["blobUploadLimit"], info["blobUploadLimitSource"] = limit, "server"
        else:
            info["blobUploadLimit"], info["blobUploadLimitSource"] = DEFAULT_BLOB_UPLOAD_LIMIT, "default"
        self._server_info = info
        return info

    # ------------------------------------------------------------------------------------------
    # records
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _prepare(collection: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Copy, add ``$type``, and validate locally (data model, bundled lexicon, size)."""
        Atmosphere._check_collection(collection)
        if not isinstance(record, Mapping):
            raise RecordValidationError(f"record: expected a dict, got {type(record).__name__}")
        rec = dict(record)
        rtype = rec.setdefault("$type", collection)
        label = collection.rsplit(".", 1)[-1]
        if rtype != collection:
            raise RecordValidationError(
                f"{label}.$type: {rtype!r} does not match the collection {collection!r}"
            )
        lex = bundled_lexicons()
        if collection in lex:
            lex.validate_record(collection, rec)
        else:
            check_data_model(rec, label)
            size = record_json_size(rec)
            if size >= MAX_BODY_BYTES:
                raise RecordSizeError(
                    f"{label}: the record is {size:,} bytes as JSON, the limit is {MAX_BODY_BYTES:,}"
                )
        return rec

    @staticmethod
    def _check_collection(collection: Any, where: str = "collection") -> None:
        if not isinstance(collection, str) or len(collection) > 317 or not _NSID_RE.match(collection):
            raise RecordValidationError(
                f"{where}: {collection!r} is not a valid collection NSID "
                "(reversed-domain name like 'science.alt.dataset.entry')"
            )

    @staticmethod
    def _check_repo(repo: Any, where: str = "repo") -> None:
        """A DID or a handle (``@`` allowed in front), checked before any request."""
        text = repo.removeprefix("@") if isinstance(repo, str) else repo
        if not isinstance(text, str) or not (_is_did(text) or _is_handle(text)):
            raise RecordValidationError(
                f"{where}: {repo!r:.80} is not a DID (did:plc:...) or a handle (alice.example.com)"
            )

    @staticmethod
    def _check_rkey(rkey: str) -> None:
        if not is_valid_rkey(rkey):
            raise RecordValidationError(f"rkey: {rkey!r} is not a valid record key (1-512 of A-Za-z0-9.-_:~)")

    def _record_address(
        self, what: str, uri: Any, rkey: str | None, repo: str | None
    ) -> tuple[str, str, str | None, bool]:
        """``(collection, rkey, repo, by_uri)`` from either call form of get_record/delete_record:
        ``(at:// URI)`` (atdata's; an :class:`~atdata_lab.atmosphere.AtUri` too) or
        ``(collection, rkey, repo=)`` (ours). A mix of the two is refused, naming both forms."""
        forms = f"{what}('at://<did>/<collection>/<rkey>') or {what}(collection, rkey, repo=...)"
        text = uri if isinstance(uri, str) else None
        if text is None and hasattr(uri, "authority") and hasattr(uri, "collection") and hasattr(uri, "rkey"):
            text = str(uri)  # an AtUri (ours or one that prints like atdata's)
        if text is None:
            raise InvalidArgumentError(f"{what}: got {type(uri).__name__} {uri!r:.80}; call {forms}")
        if not text.startswith("at://"):
            if rkey is None:
                raise InvalidArgumentError(
                    f"{what}({text!r:.100}): not an at:// URI, and no record key: call {forms}"
                )
            return text, rkey, repo, False
        if rkey is not None or repo is not None:
            raise InvalidArgumentError(
                f"{what}({text!r:.100}, ...): an at:// URI already names the repository, collection and "
                f"record key; pass it alone, or call {what}(collection, rkey, repo=...)"
            )
        u = AtUri.parse(text)
        if not u.collection or not u.rkey:
            raise InvalidArgumentError(f"{what}({text!r:.100}): the URI names no record; call {forms}")
        return u.collection, u.rkey, u.authority, True

    def get_record(self, uri: Any, rkey: str | None = None, *, repo: str | None = None) -> Any:
        """Fetch one record, by at:// URI (atdata's form) or by collection and key (ours).

        ``get_record("at://did:plc:.../science.alt.dataset.entry/3k...")`` (or an
        :class:`~atdata_lab.atmosphere.AtUri`) returns the record's value, as atdata does: a
        :class:`RecordValue` (a dict) whose ``.uri`` and ``.cid`` say where it came from.
        ``get_record(collection, rkey, repo=...)`` returns ``{"uri", "cid", "value"}``.

        Args:
            uri: An at:// URI of a record, or the collection NSID (then ``rkey`` is required).
            rkey: The record key (with a collection only).
            repo: DID or handle, with a collection only; default the logged-in account. Another
                PDS is found via the DID document and read anonymously.

        Raises:
            InvalidArgumentError: The two forms mixed (a URI with ``rkey``/``repo``, or a
                collection without ``rkey``); nothing was sent.
            RecordNotFoundError: No such record (also a ``KeyError``).
        """
        collection, key, where, by_uri = self._record_address("get_record", uri, rkey, repo)
        got = self._get_record(collection, key, repo=where)
        if not by_uri:
            return got
        value = got["value"]
        if not isinstance(value, Mapping):
            raise RecordValidationError(
                f"{got['uri']}: the PDS returned a record value that is not an object ({type(value).__name__})"
            )
        return RecordValue(value, uri=got["uri"], cid=got["cid"])

    def _get_record(self, collection: str, rkey: str, *, repo: str | None = None) -> dict[str, Any]:
        self._check_collection(collection)
        self._check_rkey(rkey)
        did, base = self._repo_target(repo, "get_record")
        uri = f"at://{did}/{collection}/{rkey}"
        out = self._call(
            "query",
            "com.atproto.repo.getRecord",
            params={"repo": did, "collection": collection, "rkey": rkey},
            op=f"get {uri}",
            base_url=base,
        )
        if not isinstance(out, dict) or "value" not in out:
            raise RecordNotFoundError(f"cannot get {uri}: the PDS returned no record")
        return {"uri": out.get("uri", uri), "cid": out.get("cid"), "value": out["value"]}

    def list_records(
        self,
        collection: str,
        *,
        repo: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        reverse: bool = False,
    ) -> tuple[list[RecordValue], str | None]:
        """One page of a collection's records, as atdata: ``(records, next_cursor)``.

        ``records`` are the record values (:class:`RecordValue` dicts whose ``.uri``/``.cid`` keep
        where each came from); ``next_cursor`` is None after the last page::

            records, cursor = client.list_records(nsid)
            while cursor:
                more, cursor = client.list_records(nsid, cursor=cursor)

        :meth:`list_all_records` follows the cursors for you (bounded) and keeps each record's
        ``{"uri", "cid", "value"}``.

        Args:
            collection: The collection NSID.
            repo: DID or handle; default the logged-in account.
            limit: Records in the page (1 to 100).
            cursor: None for the first page, then the cursor the previous page returned.
            reverse: Oldest first instead of the PDS's default order.
        """
        self._check_collection(collection)
        return self._list_page(collection, repo, limit, reverse, cursor)

    def list_all_records(
        self,
        collection: str,
        *,
        repo: str | None = None,
        limit: int | None = None,
        reverse: bool = False,
        max_pages: int = MAX_LIST_PAGES,
    ) -> list[dict[str, Any]]:
        """All records of a collection (or the first ``limit``), following cursors to the end.

        A list (not a generator: errors surface here, not halfway through a loop) of
        ``{"uri", "cid", "value"}``.

        Args:
            collection: The collection NSID.
            repo: DID or handle; default the logged-in account.
            limit: Stop after this many records (default: all of them).
            reverse: Oldest first instead of the PDS's default order.
            max_pages: Refuse to follow more cursors than this (a server that hands out a new
                cursor forever would otherwise be paged without end).

        Raises:
            ResponseTooLargeError: The server repeated a cursor, or still had more after
                ``max_pages`` pages.
        """
        self._check_collection(collection)
        did, base = self._repo_target(repo, "list_records")
        out: list[dict[str, Any]] = []
        next_cursor: str | None = None
        seen: set[str] = set()
        pages = 0
        while limit is None or len(out) < limit:
            if pages >= max_pages:
                raise ResponseTooLargeError(
                    f"cannot list {collection} of {did}: the PDS still had more after {max_pages} pages "
                    f"({len(out):,} records); pass max_pages= to read further"
                )
            pages += 1
            page = 100 if limit is None else max(1, min(100, limit - len(out)))
            recs, next_cursor = self._list_call(collection, did, base, page, next_cursor, reverse)
            out.extend(recs)
            if len(recs) < page or not next_cursor:
                break  # a short page is the last one
            if next_cursor in seen:
                raise ResponseTooLargeError(
                    f"cannot list {collection} of {did}: the PDS sent the cursor {next_cursor[:40]!r} twice "
                    "(its listing goes round in a circle)"
                )
            seen.add(next_cursor)
        return out if limit is None else out[:limit]

    def _list_call(
        self, collection: str, did: str, base: str | None, page: int, cursor: str | None, reverse: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One listRecords request: its ``{"uri", "cid", "value"}`` items (at most ``page``) and cursor."""
        res = self._call(
            "query",
            "com.atproto.repo.listRecords",
            params={
                "repo": did,
                "collection": collection,
                "limit": page,
                "cursor": cursor,
                "reverse": "true" if reverse else None,
            },
            op=f"list {collection} of {did}",
            base_url=base,
        )
        recs = res.get("records", []) if isinstance(res, dict) else []
        if not isinstance(recs, list):
            recs = []
        if len(recs) > page:
            log.warning(
                "the PDS answered %d records for a page of %d; the rest were dropped", len(recs), page
            )
        items = [
            {"uri": r.get("uri"), "cid": r.get("cid"), "value": r.get("value")}
            for r in recs[:page]
            if isinstance(r, dict)
        ]
        got = res.get("cursor") if isinstance(res, dict) else None
        if got is not None and not _good_cursor(got):
            log.warning("ignored a malformed listRecords cursor from the PDS (%s)", type(got).__name__)
            got = None
        return items, got or None

    def _list_page(
        self, collection: str, repo: str | None, limit: int | None, reverse: bool, cursor: Any
    ) -> tuple[list[RecordValue], str | None]:
        """One page of record values and the next cursor (:meth:`list_records`)."""
        if cursor is not None and not _good_cursor(cursor):
            raise InvalidArgumentError(
                f"cursor={cursor!r:.60}: give None (first page) or the cursor the previous page returned"
            )
        if limit is None:
            limit = 100
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidArgumentError(f"limit={limit!r:.40}: give a positive int (at most 100 a page)")
        did, base = self._repo_target(repo, "list_records")
        page = min(limit, 100)
        items, next_cursor = self._list_call(collection, did, base, page, cursor, reverse)
        if len(items) < page:
            next_cursor = None  # a short page is the last one (the PDS still sends a cursor)
        values = []
        for r in items:
            if isinstance(r["value"], Mapping) and isinstance(r["uri"], str):
                values.append(RecordValue(r["value"], uri=r["uri"], cid=r["cid"]))
            else:
                log.warning("dropped a listRecords item without a uri or an object value (%.120r)", r["uri"])
        return values, next_cursor

    def _list_collection(self, suffix: str, repo: str | None, limit: int) -> list[RecordValue]:
        """atdata's ``list_schemas``/``list_datasets``/...: up to ``limit`` record values, with a
        warning when more exist."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidArgumentError(f"limit={limit!r:.40}: give a positive int")
        collection = {"schema": SCHEMA_NSID, "entry": ENTRY_NSID, "lens": LENS_NSID, "label": LABEL_NSID}[
            suffix
        ]
        out: list[RecordValue] = []
        cursor: str | None = None
        seen: set[str] = set()
        while len(out) < limit:
            page, cursor = self.list_records(collection, repo=repo, limit=limit - len(out), cursor=cursor)
            out += page
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        if cursor:
            warnings.warn(
                f"list_{suffix}s() returned {len(out)} records but more exist; pass a larger limit= or "
                f"page with list_records({collection!r}, cursor=...)",
                stacklevel=3,
            )
        return out

    def list_schemas(self, repo: str | None = None, limit: int = 100) -> list[RecordValue]:
        """Up to ``limit`` schema record values of ``repo`` (default: yours), newest first; warns
        when more exist (atdata's)."""
        return self._list_collection("schema", repo, limit)

    def list_datasets(self, repo: str | None = None, limit: int = 100) -> list[RecordValue]:
        """Up to ``limit`` dataset entry record values of ``repo`` (default: yours); warns when more
        exist (atdata's). Each value's ``.uri`` is the entry's at:// URI."""
        return self._list_collection("entry", repo, limit)

    def list_lenses(self, repo: str | None = None, limit: int = 100) -> list[RecordValue]:
        """Up to ``limit`` lens record values of ``repo`` (default: yours); warns when more exist."""
        return self._list_collection("lens", repo, limit)

    def list_labels(self, repo: str | None = None, limit: int = 100) -> list[RecordValue]:
        """Up to ``limit`` label record values of ``repo`` (default: yours); warns when more exist."""
        return self._list_collection("label", repo, limit)

    def create_record(
        self,
        collection: str,
        record: Mapping[str, Any],
        *,
        rkey: str | None = None,
        validate: bool | None = None,
    ) -> WrittenRecord:
        """Create a record.

        Args:
            collection: The collection NSID (``$type`` is added if missing and must match).
            record: The record value (validated locally first).
            rkey: Record key; default a fresh TID made here, so that a retry is safe.
            validate: The PDS's lexicon validation (``None``: server default; ``True`` fails on
                PDSes that do not know the lexicon).

        Returns:
            The record's :class:`WrittenRecord`: its AT URI (as atdata), also readable as
            ``{"uri", "cid", "value"}``. If ``rkey`` already holds exactly this value, that record
            is returned (idempotent create).

        Raises:
            RecordValidationError: The record breaks the data model/lexicon (nothing was sent).
            RecordConflictError: ``rkey`` already holds a different record.
        """
        return WrittenRecord.of(self._create_record(collection, record, rkey=rkey, validate=validate))

    def _create_record(
        self, collection: str, record: Mapping[str, Any], *, rkey: str | None, validate: bool | None
    ) -> dict[str, Any]:
        did = self._require_login("create_record")
        rec = self._prepare(collection, record)
        rkey = rkey or make_tid()
        self._check_rkey(rkey)
        body: dict[str, Any] = {"repo": did, "collection": collection, "rkey": rkey, "record": rec}
        if validate is not None:
            body["validate"] = validate
        uri = f"at://{did}/{collection}/{rkey}"
        try:
            out = self._call(
                "procedure",
                "com.atproto.repo.createRecord",
                body=body,
                op=f"create {uri}",
                check=lambda: self._landed(collection, rkey, rec),
            )
        except RequestError as e:
            if self._is_exists_error(e):
                return self._verify_written(collection, rkey, rec, e)
            raise
        if isinstance(out, dict) and "value" in out:
            return out  # from _landed(): an earlier attempt (or an identical earlier create) landed
        return {"uri": out.get("uri", uri), "cid": out.get("cid"), "value": rec}

    def _landed(self, collection: str, rkey: str, rec: Mapping[str, Any]) -> dict[str, Any] | None:
        """After a 5xx on a create: the PDS answers 500 when the rkey is taken. Look.

        Returns the record if the rkey holds exactly ``rec`` (our write landed, or an identical
        earlier one), None if the rkey is free (retry), and raises RecordConflictError if it
        holds something else.
        """
        try:
            cur = self.get_record(collection, rkey)
        except RecordNotFoundError:
            return None
        want = record_cid(rec)
        if cur["cid"] == want:
            log.debug("%s/%s already holds our record (cid %s)", collection, rkey, want)
            return {"uri": cur["uri"], "cid": cur["cid"], "value": dict(rec)}
        raise RecordConflictError(
            f"cannot create {cur['uri']}: that record key already holds a different record "
            f"(cid {cur['cid']}, ours would be {want}); use put_record() to replace it or pick another rkey",
            current_cid=cur["cid"],
        )

    @staticmethod
    def _is_exists_error(e: RequestError) -> bool:
        resp = e.response
        if not isinstance(resp, PDSResponse):
            return False
        text = f"{resp.error or ''} {resp.message or ''}".lower()
        return resp.status_code in (400, 409) and ("already exists" in text or "invalidswap" in text)

    def _verify_written(
        self, collection: str, rkey: str, rec: Mapping[str, Any], err: RequestError
    ) -> dict[str, Any]:
        """After "already exists"/InvalidSwap: success iff the record now holds exactly ``rec``."""
        want = record_cid(rec)
        try:
            cur = self.get_record(collection, rkey)
        except RecordNotFoundError:
            cur = None
        if cur is not None and cur["cid"] == want:
            log.debug(
                "%s/%s already holds the same record (cid %s): treating as written", collection, rkey, want
            )
            return {"uri": cur["uri"], "cid": cur["cid"], "value": dict(rec)}
        raise RecordConflictError(
            f"cannot write at://{self.did}/{collection}/{rkey}: "
            + ("it already holds a different record" if cur is not None else "the record changed")
            + f" (cid now {cur['cid'] if cur else None}, ours would be {want})",
            current_cid=cur["cid"] if cur else None,
            response=err.response,
            status=err.status,
        )

    def put_record(
        self,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        *,
        swap_record: str | None = None,
        validate: bool | None = None,
        swap_commit: str | None = None,
    ) -> WrittenRecord:
        """Create or replace the record at ``rkey``.

        Args:
            collection: The collection NSID.
            rkey: The record key.
            record: The new value (validated locally first).
            swap_record: Compare-and-swap: the CID the record must still have (from a previous
                read); if it changed meanwhile, nothing is written.
            validate: The PDS's lexicon validation (see :meth:`create_record`).
            swap_commit: Compare-and-swap on the whole repository (atdata's): the repo's commit
                CID it must still be at; if anything was written since, nothing is written.

        Returns:
            The record's :class:`WrittenRecord`: its AT URI (as atdata), also readable as
            ``{"uri", "cid", "value"}``.

        Raises:
            RecordConflictError: ``swap_record`` or ``swap_commit`` is stale (``current_cid``
                tells the record's CID now).
        """
        return WrittenRecord.of(
            self._put_record(collection, rkey, record, swap_record, validate, swap_commit)
        )

    def _put_record(
        self,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        swap_record: str | None,
        validate: bool | None,
        swap_commit: str | None,
    ) -> dict[str, Any]:
        did = self._require_login("put_record")
        self._check_rkey(rkey)
        rec = self._prepare(collection, record)
        body: dict[str, Any] = {"repo": did, "collection": collection, "rkey": rkey, "record": rec}
        if swap_record is not None:
            body["swapRecord"] = _check_cid(swap_record, "swap_record")
        if swap_commit is not None:
            body["swapCommit"] = _check_cid(swap_commit, "swap_commit")
        if validate is not None:
            body["validate"] = validate
        uri = f"at://{did}/{collection}/{rkey}"
        try:
            out = self._call("procedure", "com.atproto.repo.putRecord", body=body, op=f"put {uri}")
        except RecordConflictError as e:
            try:
                cur = self.get_record(collection, rkey)
            except RecordNotFoundError:
                cur = None
            if cur is not None and cur["cid"] == record_cid(rec):
                return {"uri": cur["uri"], "cid": cur["cid"], "value": rec}
            expected = f"record cid {swap_record}" if swap_record is not None else f"commit {swap_commit}"
            raise RecordConflictError(
                f"cannot put {uri}: the "
                + ("record" if swap_record is not None else "repository")
                + f" changed since it was read (expected {expected}; the record's cid is now "
                f"{cur['cid'] if cur else 'deleted'}); read it again and retry",
                current_cid=cur["cid"] if cur else None,
                response=e.response,
                status=e.status,
            ) from None
        return {"uri": out.get("uri", uri), "cid": out.get("cid"), "value": rec}

    def delete_record(
        self,
        uri: Any,
        rkey: str | None = None,
        *,
        swap_record: str | None = None,
        swap_commit: str | None = None,
    ) -> None:
        """Delete one of your records, by at:// URI (atdata's form) or by collection and key (ours).

        ``delete_record("at://<your did>/<collection>/<rkey>")`` or ``delete_record(collection, rkey)``.
        Deleting a missing record is not an error.

        Args:
            uri: An at:// URI of a record in your repository, or the collection NSID (then
                ``rkey`` is required).
            rkey: The record key (with a collection only).
            swap_record: Delete only if the record still has this CID.
            swap_commit: Delete only if the repository is still at this commit CID (atdata's).

        Raises:
            InvalidArgumentError: The two forms mixed, or the URI is in another repository
                (nothing was sent).
            RecordConflictError: ``swap_record``/``swap_commit`` is stale.
        """
        collection, key, where, _ = self._record_address("delete_record", uri, rkey, None)
        did = self._require_login("delete_record")
        if where is not None and where != did and where.lstrip("@").lower() != (self.handle or "").lower():
            raise InvalidArgumentError(
                f"cannot delete at://{where}/{collection}/{key}: it is in another repository; you can "
                f"delete only records of your own ({did})"
            )
        self._check_collection(collection)
        self._check_rkey(key)
        body: dict[str, Any] = {"repo": did, "collection": collection, "rkey": key}
        if swap_record is not None:
            body["swapRecord"] = _check_cid(swap_record, "swap_record")
        if swap_commit is not None:
            body["swapCommit"] = _check_cid(swap_commit, "swap_commit")
        self._call(
            "procedure",
            "com.atproto.repo.deleteRecord",
            body=body,
            op=f"delete at://{did}/{collection}/{key}",
        )

    def apply_writes(
        self, writes: Iterable[Mapping[str, Any]], *, validate: bool | None = None
    ) -> list[dict[str, Any]]:
        """Apply up to 200 creates/updates/deletes atomically, in one request.

        Args:
            writes: ``{"action": "create"|"update"|"delete", "collection", "rkey", "value"}``
                dicts (``rkey`` optional for creates: a TID is made here; ``value`` unused
                for deletes).
            validate: The PDS's lexicon validation for every write.

        Returns:
            One ``{"action", "uri", "cid", "collection", "rkey", "value"}`` per write, in order
            (``cid``/``value`` are None for deletes).

        Raises:
            RecordValidationError: A bad write, more than 200 writes, or a body over 1,000,000
                bytes (:class:`~atdata_lab.errors.RecordSizeError`) — nothing was sent.
            RecordConflictError: A create's rkey already holds a different record.
        """
        did = self._require_login("apply_writes")
        items = list(writes)
        if not items:
            return []
        if len(items) > MAX_APPLY_WRITES:
            raise RecordValidationError(
                f"writes: {len(items)} writes, the limit is {MAX_APPLY_WRITES} per applyWrites"
            )
        wire: list[dict[str, Any]] = []
        plan: list[dict[str, Any]] = []
        for i, w in enumerate(items):
            if not isinstance(w, Mapping):
                raise RecordValidationError(f"writes[{i}]: expected a dict")
            action, collection = w.get("action"), w.get("collection")
            if not isinstance(collection, str) or not collection:
                raise RecordValidationError(f"writes[{i}].collection: required")
            self._check_collection(collection, f"writes[{i}].collection")
            rkey = w.get("rkey") or (make_tid() if action == "create" else None)
            if not isinstance(rkey, str):
                raise RecordValidationError(f"writes[{i}].rkey: required for {action!r}")
            self._check_rkey(rkey)
            if action in ("create", "update"):
                try:
                    value = self._prepare(collection, w.get("value") or {})
                except RecordValidationError as e:
                    raise type(e)(f"writes[{i}]: {e}") from None
                t = "com.atproto.repo.applyWrites#" + action
                wire.append({"$type": t, "collection": collection, "rkey": rkey, "value": value})
            elif action == "delete":
                value = None
                wire.append(
                    {"$type": "com.atproto.repo.applyWrites#delete", "collection": collection, "rkey": rkey}
                )
            else:
                raise RecordValidationError(f"writes[{i}].action: {action!r} is not create, update or delete")
            plan.append(
                {
                    "action": action,
                    "collection": collection,
                    "rkey": rkey,
                    "value": value,
                    "uri": f"at://{did}/{collection}/{rkey}",
                }
            )
        body: dict[str, Any] = {"repo": did, "writes": wire}
        if validate is not None:
            body["validate"] = validate
        size = record_json_size(body)
        if size >= MAX_BODY_BYTES:
            raise RecordSizeError(
                f"writes: the applyWrites body is {size:,} bytes as JSON, the limit is "
                f"{MAX_BODY_BYTES:,}: split the batch or move bulk data to blobs"
            )
        try:
            out = self._call(
                "procedure",
                "com.atproto.repo.applyWrites",
                body=body,
                op=f"apply {len(wire)} writes",
                check=lambda: self._batch_landed(plan),
            )
        except RequestError as e:
            if self._is_exists_error(e) or isinstance(e, RecordConflictError):
                return self._verify_batch(plan, e)
            raise
        if isinstance(out, list):  # from _batch_landed()
            return out
        results = out.get("results") if isinstance(out, dict) else None
        final = []
        for j, p in enumerate(plan):
            r = (
                results[j]
                if isinstance(results, list) and j < len(results) and isinstance(results[j], dict)
                else {}
            )
            final.append(
                {
                    "action": p["action"],
                    "uri": r.get("uri", p["uri"]),
                    "cid": r.get("cid") if p["action"] != "delete" else None,
                    "collection": p["collection"],
                    "rkey": p["rkey"],
                    "value": p["value"],
                }
            )
        return final

    def _batch_landed(self, plan: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """After a 5xx on applyWrites (the PDS answers 500 when a create's rkey is taken).

        The batch is atomic: if every create's rkey holds exactly our record, it landed (return
        the results); if none holds anything, it did not (None: retry); a create rkey holding a
        different record raises RecordConflictError.
        """
        creates = [p for p in plan if p["action"] == "create"]
        if not creates:
            return None  # updates and deletes are idempotent: just retry
        found = 0
        for p in creates:
            try:
                cur = self.get_record(p["collection"], p["rkey"])
            except RecordNotFoundError:
                continue
            if cur["cid"] != record_cid(p["value"]):
                raise RecordConflictError(
                    f"cannot apply the writes: {p['uri']} already holds a different record (cid {cur['cid']}); "
                    "nothing was written",
                    current_cid=cur["cid"],
                )
            found += 1
        if found == 0:
            return None
        if found < len(creates):
            raise RecordConflictError(
                f"cannot apply the writes: {found} of {len(creates)} created records already exist with the "
                "same content (written by an earlier, partial attempt?); nothing was written"
            )
        return [
            {
                "action": p["action"],
                "uri": p["uri"],
                "cid": record_cid(p["value"]) if p["value"] is not None else None,
                "collection": p["collection"],
                "rkey": p["rkey"],
                "value": p["value"],
            }
            for p in plan
        ]

    def _verify_batch(self, plan: list[dict[str, Any]], err: RequestError) -> list[dict[str, Any]]:
        """The batch was refused as a conflict: succeed iff the repo already holds exactly the batch."""
        final = []
        for p in plan:
            try:
                cur = self.get_record(p["collection"], p["rkey"])
            except RecordNotFoundError:
                cur = None
            if p["action"] == "delete":
                ok = cur is None
            else:
                ok = cur is not None and cur["cid"] == record_cid(p["value"])
            if not ok:
                raise RecordConflictError(
                    f"cannot apply the writes: {p['uri']} "
                    + ("already holds a different record" if cur is not None else "does not hold our record")
                    + f" ({err})",
                    current_cid=cur["cid"] if cur else None,
                    response=err.response,
                    status=err.status,
                )
            final.append(
                {
                    "action": p["action"],
                    "uri": p["uri"],
                    "cid": cur["cid"] if cur else None,
                    "collection": p["collection"],
                    "rkey": p["rkey"],
                    "value": p["value"],
                }
            )
        log.debug("applyWrites conflict resolved: the repo already holds all %d writes", len(plan))
        return final

    # ------------------------------------------------------------------------------------------
    # blobs
    # ------------------------------------------------------------------------------------------

    def upload_blob(
        self,
        data: bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str],
        mime_type: str | None = None,
        *,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Upload a blob; returns its blob reference for use in a record.

        Args:
            data: Bytes, a binary file object (streamed from its current position), or a path
                (streamed from disk).
            mime_type: The MIME type (atdata's name; ``content_type`` is ours), sent as
                ``Content-Type`` (e.g. ``"application/x-tar"``). Default
                ``"application/octet-stream"``, as atdata (never ``*/*``).
            content_type: The same, by our name; give one of the two, or both equal.
            timeout: This upload's read/write timeout in seconds (atdata's); default the client's
                ``timeout``, which applies per network operation, not to the whole upload.

        Returns:
            ``{"$type": "blob", "ref": {"$link": cid}, "mimeType", "size"}``. The PDS serves it
            only after a record references it.

        Raises:
            RecordTooLargeError: Over the server's blob limit (default 5 MB on the reference PDS).
        """
        self._require_login("upload_blob")
        if content_type is not None and mime_type is not None and content_type != mime_type:
            raise InvalidArgumentError(
                f"upload_blob: mime_type={mime_type!r:.80} and content_type={content_type!r:.80} differ; "
                "give one of them (they are the same thing)"
            )
        content_type = content_type or mime_type or "application/octet-stream"
        if not isinstance(content_type, str) or "/" not in content_type or not content_type.isprintable():
            raise InvalidArgumentError(
                f"content_type must be a MIME type like 'application/x-tar', got {content_type!r:.80}"
            )
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < 86400
        ):
            raise InvalidArgumentError(f"timeout={timeout!r:.40}: give seconds, a positive number")
        close: IO[bytes] | None = None
        rewind: Callable[[], None] | None = None
        size: int | None = None
        if isinstance(data, (bytes, bytearray, memoryview)):
            payload: Any = bytes(data)
            size = len(payload)
        elif isinstance(data, (str, os.PathLike)):
            p = Path(data)
            size = p.stat().st_size
            close = payload = open(p, "rb")  # noqa: SIM115 - closed in finally
            rewind = lambda: payload.seek(0)  # noqa: E731
        elif hasattr(data, "read"):
            payload = data
            if hasattr(data, "seek") and getattr(data, "seekable", lambda: False)():
                start = data.tell()
                rewind = lambda: data.seek(start)  # type: ignore[assignment]  # noqa: E731
                size = data.seek(0, os.SEEK_END) - start
                data.seek(start)
        else:
            raise InvalidTypeError(
                f"upload_blob takes bytes, a binary file or a path, not {type(data).__name__}"
            )
        headers = {"Content-Type": content_type}
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            try:
                out = self._call(
                    "procedure",
                    "com.atproto.repo.uploadBlob",
                    content=payload,
                    headers=headers,
                    op=f"upload a {size if size is not None else '?'}-byte blob",
                    safe=True,
                    rewind=rewind,
                    retry=rewind is not None or isinstance(payload, bytes),
                    timeout=None if timeout is None else float(timeout),
                )
            except RecordTooLargeError as e:
                limit = (self._server_info or {}).get("blobUploadLimit", DEFAULT_BLOB_UPLOAD_LIMIT)
                raise RecordTooLargeError(
                    f"the blob is {size:,} bytes; the PDS refused it as too large (its blob upload limit; "
                    f"the reference PDS defaults to {limit:,} bytes, set by PDS_BLOB_UPLOAD_LIMIT)"
                    if size is not None
                    else str(e),
                    response=e.response,
                    status=e.status,
                ) from None
        finally:
            if close is not None:
                close.close()
        blob = out.get("blob") if isinstance(out, dict) else None
        if not isinstance(blob, dict):
            raise RequestError("uploadBlob returned no blob reference", response=None)
        return blob

    def get_blob_url(self, did: str, cid: str, *, trust: Any = None) -> str:
        """The URL that serves a blob (``com.atproto.sync.getBlob`` on the repo's PDS), for HTTP
        readers such as WebDataset (atdata's). Nothing is downloaded, so nothing is checked against
        the CID: :meth:`get_blob` and :meth:`download_blob` do check it.

        Args:
            did: The repo's DID or handle.
            cid: The blob CID (CIDv1, raw, sha2-256).
            trust: The :class:`~atdata_lab.urls.TrustPolicy` for the repo's PDS when it is not ours.

        Raises:
            RecordValidationError: ``cid`` is not a verifiable blob CID (nothing was sent).
            RecordNotFoundError: The repo's PDS cannot be found.
        """
        cid = str(parse_blob_cid(cid))
        did, base = self._repo_target(did, "get_blob_url", trust=trust)
        return f"{base or self._pds_url}/xrpc/com.atproto.sync.getBlob?" + urlencode({"did": did, "cid": cid})

    def get_blob(self, did: str, cid: str, *, max_bytes: int | None = None, trust: Any = None) -> bytes:
        """Download a blob into memory; the bytes are checked against the CID.

        Args:
            did: The repo's DID or handle.
            cid: The blob CID (``bafkrei...``: CIDv1, raw, sha2-256; others cannot be verified
                and are refused before any request).
            max_bytes: Refuse a blob larger than this (default :data:`MAX_BLOB_BYTES`).
            trust: The :class:`~atdata_lab.urls.TrustPolicy` for the repo's PDS when it is not ours.

        Raises:
            RecordValidationError: ``cid`` is not a verifiable blob CID (nothing was sent).
            RecordNotFoundError: No such blob (an uploaded blob is served only once a record
                references it).
            BlobMismatchError: The bytes do not match the CID.
        """
        buf = bytearray()
        self._fetch_blob(did, cid, buf.extend, None, "get_blob", max_bytes=max_bytes, trust=trust)
        return bytes(buf)

    def download_blob(
        self,
        did: str,
        cid: str,
        dest_path: str | os.PathLike[str],
        progress: ProgressLike = None,
        *,
        max_bytes: int | None = None,
        trust: Any = None,
    ) -> Path:
        """Stream a blob to ``dest_path`` (atomically: written beside it, renamed when complete).

        Args:
            did: The repo's DID or handle.
            cid: The blob CID (CIDv1, raw, sha2-256).
            dest_path: Where to write the file.
            progress: ``None``/``False`` (silent), ``True`` (tqdm) or a callable taking
                :class:`~atdata_lab.progress.ProgressEvent` (task ``"download"``, unit ``"bytes"``).
            max_bytes: Refuse a blob larger than this (default :data:`MAX_BLOB_BYTES`).
            trust: The :class:`~atdata_lab.urls.TrustPolicy` for the repo's PDS when it is not ours.

        Returns:
            The path written. The content is checked against the CID before the rename.

        Raises:
            RecordValidationError: ``cid`` is not a verifiable blob CID (nothing was sent).
            RecordNotFoundError: No such blob.
            BlobMismatchError: The bytes do not match the CID (nothing is left at ``dest_path``).
            StoreError: The file cannot be written (disk full, permissions).
        """
        dest = Path(dest_path)
        parse_blob_cid(cid)  # refused before anything is created or sent
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(temp_name(dest.name))
            fh = open(tmp, "xb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise StoreError(
                f"cannot write the blob {cid} to {dest}: {e.strerror or e}; free space or set "
                "ATDATA_HOME to a writable folder"
            ) from None
        try:
            with fh:

                def reset() -> None:
                    fh.seek(0)
                    fh.truncate()

                def write(chunk: bytes) -> None:
                    try:
                        fh.write(chunk)
                    except OSError as e:  # disk full: our error, and no retry
                        raise StoreError(
                            f"cannot write the blob {cid} to {dest}: {e.strerror or e}; free space "
                            "or set ATDATA_HOME to a writable folder"
                        ) from None

                self._fetch_blob(
                    did, cid, write, progress, "download_blob", reset=reset, max_bytes=max_bytes, trust=trust
                )
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return dest

    def _fetch_blob(
        self,
        did: str,
        cid: str,
        write: Callable[[bytes], Any],
        progress: ProgressLike,
        what: str,
        *,
        reset: Callable[[], None] | None = None,
        max_bytes: int | None = None,
        trust: Any = None,
    ) -> None:
        """Stream ``com.atproto.sync.getBlob`` (public, anonymous) into ``write``, with retries.

        The CID is parsed first (only CIDv1 raw sha2-256 CIDs can be checked); the bytes are hashed
        while they stream and must equal the CID's digest; more than ``max_bytes`` is refused."""
        parsed = parse_blob_cid(cid)
        cid = str(parsed)
        limit = MAX_BLOB_BYTES if max_bytes is None else int(max_bytes)
        did, base = self._repo_target(did, what, trust=trust)
        url = f"{base or self._pds_url}/xrpc/com.atproto.sync.getBlob"
        report = resolve_progress(progress)

        def send(attempt: int) -> None:
            if attempt > 1 and reset is not None:
                reset()
            hasher = hashlib.sha256()

            def receive(r: httpx.Response) -> tuple[int, int | None]:
                declared = r.headers.get("content-length", "")
                total = int(declared) if declared.isdigit() else None
                if total is not None and total > limit:
                    raise RecordTooLargeError(
                        f"the blob {cid} of {did} is {total:,} bytes, over the "
                        f"{limit:,}-byte limit (max_bytes=)"
                    )
                done = 0
                report(ProgressEvent("download", 0, total, "bytes", cid))
                for chunk in r.iter_bytes(1 << 20):
                    done += len(chunk)
                    if done > limit:
                        raise RecordTooLargeError(
                            f"the blob {cid} of {did} is over the {limit:,}-byte limit (max_bytes=)"
                        )
                    write(chunk)
                    hasher.update(chunk)
                    report(ProgressEvent("download", done, total, "bytes", cid))
                return done, total

            done, total = self._stream_get(url, {"did": did, "cid": cid}, receive)
            if not parsed.matches(hasher.digest()):
                got = "b" + base64.b32encode(
                    bytes([0x01, 0x55, 0x12, 0x20]) + hasher.digest()
                ).decode().lower().rstrip("=")
                raise BlobMismatchError(
                    f"the blob downloaded for {cid} from {did} does not match its CID (got {got})"
                )
            report(ProgressEvent("download", done, total, "bytes", cid, finished=True))

        if reset is None:
            reset_buf = getattr(write, "__self__", None)
            if isinstance(reset_buf, bytearray):
                reset = reset_buf.clear
        self._retrying(send, url=url, op=f"get the blob {cid} of {did}", safe=True, retry=reset is not None)

    # ------------------------------------------------------------------------------------------
    # AppView reads (atdata's names); every answer validated, malformed items dropped and logged
    # ------------------------------------------------------------------------------------------

    def _appview_items(self, out: dict[str, Any], key: str, nsid: str, limit: int) -> list[Any]:
        items = out.get(key)
        if not isinstance(items, list):
            raise AppViewError(
                f"the AppView answered {nsid} without a {key!r} list ({type(items).__name__})",
                url=self.appview_url,
            )
        if len(items) > limit:
            log.warning(
                "the AppView answered %d %s for a limit of %d; the rest were dropped", len(items), key, limit
            )
        return items[:limit]

    @staticmethod
    def _entry_dict(result: Any) -> dict[str, Any]:
        """An AppView entry view rebuilt from a validated :class:`~atdata_lab.search.SearchResult`:
        the record's fields plus ``uri``, ``cid``, ``did`` (and ``indexedAt`` when well formed)."""
        out = {k: v for k, v in result.record["value"].items() if k != "$type"}
        out.update(uri=result.uri, cid=result.cid, did=result.did)
        indexed = result.record.get("view", {}).get("indexedAt")
        if isinstance(indexed, str) and len(indexed) <= 64 and indexed.isprintable():
            out["indexedAt"] = indexed
        return out

    def search_datasets(
        self,
        q: str,
        *,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int = 25,
    ) -> list[dict[str, Any]]:
        """Datasets of every publisher matching ``q`` (full text over name, description and tags),
        through the AppView (atdata's; :meth:`atdata_lab.Index.search` gives
        :class:`~atdata_lab.search.SearchResult` objects and falls back to a PDS).

        Args:
            q: The search text.
            tags: Only datasets carrying all of these tags.
            schema_ref: Only datasets of this schema (an at:// URI).
            repo: Only this publisher's (a DID, or a handle resolved here: the AppView takes DIDs).
            limit: At most this many (1-100; default 25).

        Returns:
            Entry dicts (the record's fields plus ``uri``, ``cid``, ``did``), each validated like
            every entry read from the network (:mod:`atdata_lab.search._validate`); malformed ones
            are dropped with a logged warning.

        Raises:
            AppViewRequiredError: No AppView is configured.
            AppViewUnavailableError: It cannot be reached (or failed) after the retries.
            AppViewError: It refused, or answered without an ``entries`` list.
        """
        from atdata_lab.search._validate import result_from_view

        nsid = "science.alt.dataset.searchDatasets"
        if not isinstance(q, str) or not q.strip():
            raise InvalidArgumentError(f"q={q!r:.60}: give the text to search for")
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidArgumentError("tags: give a list of strings")
        limit = _positive_limit(limit, MAX_APPVIEW_PAGE)
        if schema_ref is not None:
            AtUri.parse(schema_ref)
        self._require_appview(nsid)
        did = self.resolve_handle(repo) if repo is not None else None
        out = self.xrpc_query(
            nsid,
            {
                "q": q,
                "tags": list(tags) if tags else None,
                "schemaRef": schema_ref,
                "repo": did,
                "limit": limit,
            },
        )
        found = []
        for view in self._appview_items(out, "entries", nsid, limit):
            r = result_from_view(view)
            if r is None:
                continue
            if (did is not None and r.did != did) or (tags and not set(tags) <= set(r.tags)):
                log.warning("dropped an AppView result outside the filters asked for (%.120r)", r.uri)
                continue
            if schema_ref is not None and r.schema_ref != schema_ref:
                log.warning("dropped an AppView result outside the filters asked for (%.120r)", r.uri)
                continue
            found.append(self._entry_dict(r))
        return found

    def get_entries(self, uris: list[str]) -> list[dict[str, Any]]:
        """Several dataset entries at once from the AppView (at most 25 at:// URIs; atdata's).

        Returns:
            The entries the AppView knows, as in :meth:`search_datasets` (validated; malformed
            ones, and any it answers that were not asked for, dropped with a logged warning).

        Raises:
            InvalidArgumentError: More than 25 URIs, or one that is not an entry's at:// URI
                (also a ``ValueError``, as atdata's); nothing was sent.
            AppViewRequiredError: No AppView is configured.
            AppViewUnavailableError: It cannot be reached (or failed) after the retries.
        """
        from atdata_lab.search._validate import result_from_view

        nsid = "science.alt.dataset.getEntries"
        if isinstance(uris, str) or not isinstance(uris, (list, tuple)):
            raise InvalidArgumentError(f"uris: give a list of at:// URIs, not {type(uris).__name__}")
        if len(uris) > MAX_GET_ENTRIES:
            raise InvalidArgumentError(
                f"getEntries takes at most {MAX_GET_ENTRIES} URIs per call, got {len(uris)}: split the list"
            )
        wanted = [str(self._entry_uri(u)) for u in uris]
        if not wanted:
            return []
        self._require_appview(nsid)
        out = self.xrpc_query(nsid, {"uris": wanted})
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        for view in self._appview_items(out, "entries", nsid, len(wanted)):
            r = result_from_view(view)
            if r is None or r.uri in seen:
                continue
            if r.uri not in wanted:
                log.warning("dropped an entry the AppView answered but was not asked for (%.120r)", r.uri)
                continue
            seen.add(r.uri)
            found.append(self._entry_dict(r))
        return found

    def _entry_uri(self, uri: Any) -> AtUri:
        """An entry's at:// URI with a DID authority (a handle is resolved here)."""
        u = AtUri.parse(str(uri)) if isinstance(uri, (str, AtUri)) else None
        if u is None or u.collection != ENTRY_NSID or not u.rkey:
            raise InvalidArgumentError(f"{uri!r:.120} is not at://<did>/{ENTRY_NSID}/<rkey>")
        if u.did is None:
            u = AtUri(self.resolve_handle(u.authority), u.collection, u.rkey)
        return u

    def get_entry_stats(self, uri: str, period: str = "week") -> dict[str, Any]:
        """How often a dataset entry was viewed and appeared in searches on the AppView (atdata's).

        Args:
            uri: The entry's at:// URI.
            period: ``"day"``, ``"week"`` or ``"month"``.

        Returns:
            ``{"views": int, "searchAppearances": int, "period": str}``.

        Raises:
            InvalidArgumentError: A bad ``uri`` or ``period`` (nothing was sent).
            AppViewRequiredError, AppViewUnavailableError: As :meth:`search_datasets`.
            AppViewError: It refused, or its answer is not such a dict.
        """
        nsid = "science.alt.dataset.getEntryStats"
        if period not in ("day", "week", "month"):
            raise InvalidArgumentError(f"period={period!r:.40}: give 'day', 'week' or 'month'")
        u = self._entry_uri(uri)
        self._require_appview(nsid)
        out = self.xrpc_query(nsid, {"uri": str(u), "period": period})
        stats: dict[str, Any] = {}
        for key in ("views", "searchAppearances"):
            v = out.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
                raise AppViewError(
                    f"the AppView answered {nsid} for {u} with {key}={v!r:.40}, not a count",
                    url=self.appview_url,
                )
            stats[key] = v
        stats["period"] = out.get("period") if out.get("period") in ("day", "week", "month") else period
        return stats

    def search_lenses(
        self,
        *,
        source_schema: str | None = None,
        target_schema: str | None = None,
        limit: int = 25,
    ) -> list[dict[str, Any]]:
        """Lenses of every publisher from and/or to a schema, through the AppView (atdata's).

        Args:
            source_schema: Only lenses from this schema (an at:// URI).
            target_schema: Only lenses to this schema (an at:// URI).
            limit: At most this many (1-100; default 25).

        Returns:
            Lens record dicts plus ``uri``, ``cid``, ``did``; each checked against the bundled
            ``science.alt.dataset.lens`` lexicon (and its ``uri`` and ``did`` against each other);
            malformed ones dropped with a logged warning.

        Raises:
            AppViewRequiredError, AppViewUnavailableError, AppViewError: As :meth:`search_datasets`.
        """
        nsid = "science.alt.dataset.searchLenses"
        for name, value in (("source_schema", source_schema), ("target_schema", target_schema)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"{name}: give an at:// schema URI")
            if value is not None:
                AtUri.parse(value)
        limit = _positive_limit(limit, MAX_APPVIEW_PAGE)
        out = self.xrpc_query(
            nsid, {"sourceSchema": source_schema, "targetSchema": target_schema, "limit": limit}
        )
        found = []
        for view in self._appview_items(out, "lenses", nsid, limit):
            lens = _lens_from_view(view)
            if lens is None:
                continue
            if (source_schema is not None and lens["sourceSchema"] != source_schema) or (
                target_schema is not None and lens["targetSchema"] != target_schema
            ):
                log.warning("dropped an AppView lens outside the filters asked for (%.120r)", lens["uri"])
                continue
            found.append(lens)
        return found


_LENS_KEYS = (
    "name",
    "sourceSchema",
    "targetSchema",
    "description",
    "getterCode",
    "putterCode",
    "language",
    "metadata",
    "sourceSchemaVersion",
    "targetSchemaVersion",
    "createdAt",
)


def _lens_from_view(view: Any) -> dict[str, Any] | None:
    """A lens view of the AppView checked like a lens record we would write, or None (logged)."""
    try:
        if not isinstance(view, Mapping):
            raise RecordValidationError(f"not an object but {type(view).__name__}")
        uri = view.get("uri")
        u = AtUri.parse(uri) if isinstance(uri, str) and len(uri) <= 8192 else None
        if u is None or u.did is None or u.collection != LENS_NSID or not u.rkey:
            raise RecordValidationError(f"uri: not at://<did>/{LENS_NSID}/<rkey>")
        if view.get("did") is not None and view.get("did") != u.did:
            raise RecordValidationError("did: differs from the uri's DID")
        cid = view.get("cid")
        if cid is not None and (not isinstance(cid, str) or len(cid) > 256 or not _CID_RE.match(cid)):
            raise RecordValidationError("cid: not a CID")
        body = {k: view[k] for k in _LENS_KEYS if view.get(k) is not None}
        bundled_lexicons().validate_record(LENS_NSID, {"$type": LENS_NSID, **body}, check_size=False)
        for key in ("sourceSchema", "targetSchema"):
            AtUri.parse(body[key])
    except (RecordValidationError, TypeError, ValueError, KeyError) as e:
        where = view.get("uri") if isinstance(view, Mapping) else None
        log.warning("dropped a malformed lens from the AppView (%.120r): %.200s", where, str(e))
        return None
    return {**body, "uri": str(u), "cid": cid, "did": u.did}
