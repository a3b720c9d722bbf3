"""The transport under :class:`~atdata_lab.atmosphere.Atmosphere`: every HTTP request to a PDS.

:class:`XrpcClientBase` owns the connections (the ``atproto`` SDK client, which holds the session
and refreshes expired access tokens, and a plain ``httpx`` client for anonymous requests to other
PDSes), and does for every XRPC call:

* bounded retries with exponential backoff for 5xx, 429 and dropped connections, honouring
  ``retry-after`` and ``ratelimit-reset``; a write is retried only when its caller says it is safe,
  or when its ``check`` finds it did not land;
* one refresh of an expired access token, then the call again;
* error mapping: an HTTP status or XRPC error becomes one of :mod:`atdata_lab.errors`
  (all :class:`~atdata_lab.errors.AtmosphereError`), carrying the answer as a :class:`PDSResponse`;
* response bounds: at most :data:`MAX_RESPONSE_BYTES` read, JSON nested at most
  :data:`MAX_JSON_DEPTH` deep (checked before anything parses it);
* ``round_trips``: the count of HTTP requests sent;
* one request at a time per client (widgets send from worker threads).

Identity, records and blobs are built on it in :mod:`atdata_lab.atmosphere.client`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import random
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from atdata_lab._journal import write_private
from atdata_lab.errors import (
    AtmosphereError,
    AuthenticationError,
    PDSUnavailableError,
    RateLimitedError,
    RecordConflictError,
    RecordNotFoundError,
    RecordTooLargeError,
    RequestError,
    ResponseTooLargeError,
)
from atdata_lab.logs import logger

__all__ = ["MAX_JSON_DEPTH", "MAX_RESPONSE_BYTES", "PDSResponse", "XrpcClientBase", "json_depth"]

log = logger("atdata_lab.atmosphere")

#: The largest response body read from a PDS (blobs are streamed to disk and bounded separately).
MAX_RESPONSE_BYTES = 32 << 20
#: The deepest JSON nesting accepted in a response (checked before parsing, without recursion).
MAX_JSON_DEPTH = 128

_START_SANDBOX_HINT = "is the PDS running? start the sandbox: atdata-lab sandbox start"
_LOGIN_HINT = "log in again: Atmosphere.login(handle, password) (or Atmosphere.from_env())"
_AUTH_ERRORS = {
    "AuthenticationRequired",
    "ExpiredToken",
    "InvalidToken",
    "AuthMissing",
    "AccountTakedown",
    "AccountDeactivated",
    "AuthFactorTokenRequired",
    "InvalidAuth",
    "BadJwt",
    "BadJwtSignature",
}
_NOT_FOUND_ERRORS = {
    "RecordNotFound",
    "RepoNotFound",
    "BlobNotFound",
    "NotFound",
    "RepoDeactivated",
    "RepoTakendown",
    "RepoSuspended",
}


@dataclass
class PDSResponse:
    """What a PDS answered (attached to every :class:`~atdata_lab.errors.RequestError`).

    Attributes:
        status_code: HTTP status (0 if no answer arrived).
        headers: Response headers, lower-case keys.
        content: Parsed JSON body (dict) or raw bytes.
        error: The XRPC error name (e.g. ``"RecordNotFound"``), if any.
        message: The XRPC error message, if any.
        url: The request URL (without query string).
        success: ``200 <= status_code < 300``.
    """

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: Any = None
    error: str | None = None
    message: str | None = None
    url: str = ""

    @property
    def success(self) -> bool:
        return 200 <= self.status_code < 300


class _Failure(Exception):
    """Internal: one failed attempt (an HTTP error answer or a transport failure)."""

    def __init__(self, response: PDSResponse | None, transport: BaseException | None = None, url: str = ""):
        super().__init__(url)
        self.response = response
        self.transport = transport
        self.url = url

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def error(self) -> str | None:
        return self.response.error if self.response is not None else None

    def text(self) -> str:
        r = self.response
        if r is None:
            return ""
        return " ".join(x for x in (r.error, r.message) if x) or str(r.content)[:200]


class _Params:
    """Query parameters for the SDK's ``invoke_query`` (duck-types a pydantic params model)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = {k: v for k, v in params.items() if v is not None}

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return dict(self._params)

    def __bool__(self) -> bool:
        return bool(self._params)


def _norm_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/xrpc"):
        url = url[: -len("/xrpc")]
    return url


def _same_server(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    ua, ub = httpx.URL(_norm_url(a)), httpx.URL(_norm_url(b))
    loop = {"localhost", "127.0.0.1", "::1"}
    ha = "127.0.0.1" if ua.host in loop else ua.host
    hb = "127.0.0.1" if ub.host in loop else ub.host
    return (ua.scheme, ha, ua.port) == (ub.scheme, hb, ub.port)


_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # possessive: linear, no backtracking


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, found without parsing (no recursion).

    Strings are blanked out first (their brackets do not count); the depth is the highest running
    count of opening minus closing brackets.
    """
    text = _JSON_STRING.sub(b'""', body)
    a = np.frombuffer(text, dtype=np.uint8)
    step = ((a == 0x5B) | (a == 0x7B)).astype(np.int32) - ((a == 0x5D) | (a == 0x7D)).astype(np.int32)
    return int(np.cumsum(step).max()) if len(step) else 0


def _bound_response(response: httpx.Response) -> None:
    """Response hook of every PDS request: the body is read here, at most MAX_RESPONSE_BYTES of it
    (decoded), and a JSON body nesting deeper than MAX_JSON_DEPTH is refused before anything parses
    it. ``getBlob`` responses are streamed to disk by :meth:`Atmosphere._fetch_blob`, which bounds them."""
    if response.request.url.path.endswith("/com.atproto.sync.getBlob") and response.status_code < 300:
        return
    where = str(response.request.url.copy_with(query=None))
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        response.close()
        raise ResponseTooLargeError(
            f"{where} answered with {int(declared):,} bytes; the limit is "
            f"{MAX_RESPONSE_BYTES:,} (is this a PDS?)"
        )
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            response.close()
            raise ResponseTooLargeError(
                f"{where} answered with more than {MAX_RESPONSE_BYTES:,} bytes, the limit (is this a PDS?)"
            )
    response._content = bytes(body)  # what response.read() / .json() return from now on
    if b"[" in body or b"{" in body:
        depth = json_depth(bytes(body))
        if depth > MAX_JSON_DEPTH:
            raise ResponseTooLargeError(
                f"{where} answered with JSON nested {depth:,} levels deep; the limit "
                f"is {MAX_JSON_DEPTH} (is this a PDS?)"
            )


def _headers_dict(headers: Any) -> dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers).items()}
    except Exception:
        return {}


def _sdk_response(exc: Any, url: str) -> PDSResponse | None:
    """Convert an SDK exception's ``response`` to a :class:`PDSResponse`."""
    resp = getattr(exc, "response", None)
    if resp is None:
        return None
    content = getattr(resp, "content", None)
    error = message = None
    if content is not None and hasattr(content, "error") and not isinstance(content, (bytes, dict)):
        error, message = getattr(content, "error", None), getattr(content, "message", None)
        content = {"error": error, "message": message}
    elif isinstance(content, dict):
        error, message = content.get("error"), content.get("message")
    elif isinstance(content, bytes):
        with contextlib.suppress(Exception):
            parsed = json.loads(content)
            if isinstance(parsed, dict):
                content = parsed
                error, message = parsed.get("error"), parsed.get("message")
    return PDSResponse(
        status_code=int(getattr(resp, "status_code", 0) or 0),
        headers=_headers_dict(getattr(resp, "headers", {}) or {}),
        content=content,
        error=error,
        message=message,
        url=url,
    )


def _httpx_response(resp: httpx.Response, url: str) -> PDSResponse:
    content: Any = resp.content
    error = message = None
    if "json" in resp.headers.get("content-type", ""):
        with contextlib.suppress(Exception):
            content = resp.json()
            if isinstance(content, dict):
                error, message = content.get("error"), content.get("message")
    return PDSResponse(
        status_code=resp.status_code,
        headers=_headers_dict(resp.headers),
        content=content,
        error=error,
        message=message,
        url=url,
    )


def _retry_after_seconds(resp: PDSResponse | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after`` or ``ratelimit-reset``), if any."""
    if resp is None:
        return None
    ra = resp.headers.get("retry-after")
    if ra:
        try:
            return max(0.0, float(ra))
        except ValueError:
            with contextlib.suppress(Exception):
                when = parsedate_to_datetime(ra)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    reset = resp.headers.get("ratelimit-reset")
    if reset:
        with contextlib.suppress(ValueError):
            return max(0.0, float(reset) - time.time())
    return None


def _reset_at(resp: PDSResponse | None) -> datetime | None:
    if resp is None:
        return None
    reset = resp.headers.get("ratelimit-reset")
    if reset:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            return datetime.fromtimestamp(float(reset), tz=UTC)
    secs = _retry_after_seconds(resp)
    if secs is not None:
        return datetime.fromtimestamp(time.time() + secs, tz=UTC)
    return None


def _short_exc(e: BaseException | None) -> str:
    if e is None:
        return "no answer"
    text = str(e) or type(e).__name__
    return text if len(text) < 160 else text[:160] + "…"


class XrpcClientBase:
    """Requests to PDSes, with retries, token refresh, error mapping and response bounds.

    The base of :class:`~atdata_lab.atmosphere.Atmosphere` (see it for the arguments). Its methods
    are the client's plumbing: :meth:`_call` sends one XRPC call, :meth:`_retrying` runs any
    request with the retry policy, :meth:`_stream_get` streams an anonymous GET.

    Attributes:
        round_trips: HTTP requests sent to PDSes so far (an int; the caller may reset it).
        max_tries, max_wait, backoff: The retry policy.
    """

    def __init__(
        self,
        pds_url: str,
        *,
        timeout: float = 30.0,
        max_tries: int = 4,
        max_wait: float = 30.0,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from atproto_client import Client
        from atproto_client.request import Request

        self._pds_url = _norm_url(pds_url)
        self.max_tries = max(1, int(max_tries))
        self.max_wait = float(max_wait)
        self.backoff = float(backoff)
        self.round_trips = 0
        self._count_lock = threading.Lock()
        self._lock = threading.RLock()  # one request at a time (re-entrant: checks after a failure read back)
        self._timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))
        hooks = {"request": [self._count], "response": [_bound_response]}
        http_kwargs: dict[str, Any] = {"timeout": self._timeout, "event_hooks": hooks}
        if transport is not None:
            http_kwargs["transport"] = transport
        self._sdk = Client(base_url=self._pds_url, request=Request(**http_kwargs))
        self._http = httpx.Client(follow_redirects=True, **http_kwargs)  # unauthenticated requests
        self._sdk.on_session_change(self._on_session_change)
        self._session_files: list[Path] = []
        self._pinned = True  # keep using pds_url even if the DID document names another URL

    def close(self) -> None:
        """Close the HTTP connections."""
        with contextlib.suppress(Exception):
            self._sdk.request.close()
        with contextlib.suppress(Exception):
            self._http.close()

    # ------------------------------------------------------------------------------------------
    # the session: creation (with retries), refresh, saved copies
    # ------------------------------------------------------------------------------------------

    def _login_kwargs(self) -> dict[str, Any]:
        """What the SDK's ``login`` needs to create a session on a bare PDS (no app.bsky, which would
        answer 400); empty for older SDKs, which have no profile lookup to turn off."""
        if "fetch_bsky_profile" in inspect.signature(self._sdk.login).parameters:
            return {"fetch_bsky_profile": False}
        return {}

    def _create_session(self, identifier: str, password: str) -> AtmosphereError | None:
        """Create the session; returns (never raises) an error without any chained context."""
        login = self._sdk.login
        kwargs = self._login_kwargs()
        err: AtmosphereError | None = None
        url = f"{self._pds_url}/xrpc/com.atproto.server.createSession"
        try:
            for attempt in range(1, self.max_tries + 1):
                try:
                    if kwargs:
                        login(identifier, password, **kwargs)
                    else:  # older SDKs: create the session without the profile lookup
                        self._sdk._get_and_set_session(identifier, password)
                    break
                except Exception as e:  # noqa: BLE001 - converted below, password-free
                    try:
                        failure = self._failure_from_exception(e, url)
                    except Exception:
                        failure = None
                    kind = type(e).__name__
                    traceback.clear_frames(e.__traceback__)
                    del e
                    if failure is None:
                        err = AuthenticationError(
                            f"login failed for {identifier!r} on {self._pds_url} ({kind})"
                        )
                        break
                    if failure.status == 429 and attempt < self.max_tries:
                        delay = _retry_after_seconds(failure.response)
                        if delay is not None and delay <= self.max_wait:
                            time.sleep(delay)
                            continue
                    if failure.status is not None and failure.status >= 500 and attempt < self.max_tries:
                        time.sleep(self._backoff_delay(attempt))
                        continue
                    if failure.status in (400, 401) and (
                        failure.error in _AUTH_ERRORS or failure.status == 401
                    ):
                        msg = failure.response.message if failure.response else None
                        err = AuthenticationError(
                            f"login failed for {identifier!r} on {self._pds_url}: "
                            f"{msg or 'invalid handle or password'} (check the handle and password)",
                            response=failure.response,
                            status=failure.status,
                        )
                    else:
                        err = self._to_error(failure, "log in")
                    break
        finally:
            password = ""
        return err

    @staticmethod
    def _write_session_file(p: Path, text: str) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        write_private(p, text)

    def _on_session_change(self, event: Any, session: Any) -> None:
        if getattr(self, "_pinned", True):
            # Keep talking to the URL we were given; the DID document may name a public URL.
            self._sdk.update_base_url(self._pds_url)
        else:
            endpoint = getattr(session, "pds_endpoint", None)
            if endpoint:
                self._pds_url = _norm_url(endpoint)
        if str(getattr(event, "value", event)) == "refresh":
            log.debug("session tokens refreshed for %s", getattr(session, "did", "?"))
            for p in self._session_files:
                with contextlib.suppress(OSError):
                    self._write_session_file(p, session.encode())

    # ------------------------------------------------------------------------------------------
    # requests: counting, retries, error mapping
    # ------------------------------------------------------------------------------------------

    def _count(self, request: httpx.Request) -> None:
        with self._count_lock:
            self.round_trips += 1
        log.debug("-> %s %s", request.method, request.url.copy_with(query=None))

    def _backoff_delay(self, attempt: int) -> float:
        return self.backoff * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    def _failure_from_exception(self, e: BaseException, url: str) -> _Failure:
        if isinstance(e, _Failure):
            return e
        if isinstance(e, httpx.TransportError):
            return _Failure(None, e, url)
        response = _sdk_response(e, url)
        if response is not None:
            return _Failure(response, None, url)
        cause = e.__cause__ or e.__context__
        if isinstance(cause, httpx.TransportError):
            return _Failure(None, cause, url)
        name = type(e).__name__
        if name in ("NetworkError", "InvokeTimeoutError"):
            return _Failure(None, cause or e, url)
        if name == "LoginRequiredError":
            return _Failure(
                PDSResponse(401, error="AuthenticationRequired", message="not logged in", url=url), None, url
            )
        raise e

    def _to_error(self, f: _Failure, op: str, *, budget_exceeded: bool = False) -> AtmosphereError:
        """Map a failure to our error classes (with the response attached)."""
        url = f.url.split("?", 1)[0]
        resp = f.response
        if resp is None:
            t = f.transport
            if isinstance(t, httpx.ConnectError):
                return PDSUnavailableError(
                    f"cannot {op}: cannot connect to the PDS at {self._host_of(url)} ({_short_exc(t)}) — "
                    f"{_START_SANDBOX_HINT}",
                    response=None,
                    status=None,
                )
            if isinstance(t, httpx.TimeoutException):
                return PDSUnavailableError(
                    f"cannot {op}: the PDS at {self._host_of(url)} did not answer in time ({type(t).__name__}); "
                    f"{_START_SANDBOX_HINT}",
                    response=None,
                    status=None,
                )
            return PDSUnavailableError(
                f"cannot {op}: the connection to the PDS at {self._host_of(url)} failed ({_short_exc(t)}); "
                f"{_START_SANDBOX_HINT}",
                response=None,
                status=None,
            )
        status, error, detail = resp.status_code, resp.error, f.text()
        if status == 429:
            reset = _reset_at(resp)
            when = f" until {reset.isoformat(timespec='seconds')}" if reset else ""
            extra = f" (beyond the {self.max_wait:g} s retry budget)" if budget_exceeded else ""
            return RateLimitedError(
                f"cannot {op}: the PDS rate limit was hit{when}{extra}: {detail}",
                reset_at=reset,
                response=resp,
                status=status,
            )
        if error in _AUTH_ERRORS or status in (401, 403):
            return AuthenticationError(
                f"cannot {op}: the session is no longer valid ({detail}) — {_LOGIN_HINT}",
                response=resp,
                status=status,
            )
        msg_l = (resp.message or "").lower()
        if (
            error in _NOT_FOUND_ERRORS
            or status == 404
            or (
                status == 400
                and (
                    "could not locate record" in msg_l
                    or "blob not found" in msg_l
                    or "could not find repo" in msg_l
                )
            )
        ):
            return RecordNotFoundError(f"cannot {op}: not found ({detail})", response=resp, status=status)
        if error == "InvalidSwap":
            return RecordConflictError(
                f"cannot {op}: the record changed since it was read ({detail})", response=resp, status=status
            )
        if (
            status == 413
            or error in ("BlobTooLarge", "PayloadTooLarge")
            or (resp.message and "too large" in resp.message.lower())
        ):
            return RecordTooLargeError(
                f"cannot {op}: too large for the PDS ({detail})", response=resp, status=status
            )
        if status >= 500:
            return PDSUnavailableError(
                f"cannot {op}: the PDS at {self._host_of(url)} failed with {status} "
                f"after {self.max_tries} tries ({detail})",
                response=resp,
                status=status,
            )
        return RequestError(f"cannot {op}: {status} {detail}", response=resp, status=status)

    @staticmethod
    def _host_of(url: str) -> str:
        try:
            u = httpx.URL(url)
            return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")
        except Exception:
            return url

    def _retrying(self, send: Callable[[int], Any], **kwargs: Any) -> Any:
        """One request with its retries, serialised per client: widgets send from worker threads."""
        with self._lock:
            return self._retrying_unlocked(send, **kwargs)

    def _retrying_unlocked(
        self,
        send: Callable[[int], Any],
        *,
        url: str,
        op: str,
        safe: bool,
        retry: bool = True,
        check: Callable[[], Any] | None = None,
        errors: Callable[[_Failure, str, bool], Exception] | None = None,
    ) -> Any:
        """Run ``send`` with bounded retries; raise our error on final failure.

        ``check`` (for writes) runs after a 5xx or a dropped connection: it returns the result if
        the write is found to have landed, raises if it conflicts, or returns None (retry).
        ``errors`` maps the final failure (failure, op, budget exceeded) to the error raised
        instead of :meth:`_to_error`'s PDS errors (the AppView's errors, for requests to it).
        """
        to_error = errors or (lambda f, op, over: self._to_error(f, op, budget_exceeded=over))
        can_retry = retry
        waited = 0.0
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            failure: _Failure | None = None
            try:
                return send(attempt)
            except Exception as e:  # noqa: BLE001 - mapped below
                failure = self._failure_from_exception(e, url)
            status = failure.status
            # An expired access token (e.g. clock skew): refresh once and repeat (nothing was done).
            if failure.error == "ExpiredToken" and not refreshed and self._can_refresh():
                refreshed = True
                if self._refresh():
                    attempt -= 1
                    continue
            if (
                check is not None
                and (status is None or status >= 500)
                and not (failure.response is None and isinstance(failure.transport, httpx.ConnectError))
            ):
                try:
                    landed = check()
                except PDSUnavailableError:
                    landed = None
                except RecordConflictError as conflict:
                    if conflict.response is None:  # carry the answer that made us look
                        conflict.response, conflict.status = failure.response, failure.status
                    raise
                if landed is not None:
                    return landed
            if status == 429:
                retry = True  # the server did not act: always safe
            elif (status is not None and status >= 500) or (
                failure.response is None and not isinstance(failure.transport, httpx.ConnectError)
            ):
                retry = safe
            else:
                retry = False
            if not retry or not can_retry or attempt >= self.max_tries:
                raise to_error(failure, op, False)
            delay = self._backoff_delay(attempt)
            hinted = _retry_after_seconds(failure.response)
            if hinted is not None:
                delay = max(delay, hinted)
            if waited + delay > self.max_wait:
                raise to_error(failure, op, True)
            log.debug(
                "retrying %s in %.2f s (attempt %d failed: %s)",
                op,
                delay,
                attempt,
                status if status is not None else type(failure.transport).__name__,
            )
            time.sleep(delay)
            waited += delay

    def _can_refresh(self) -> bool:
        s = self._sdk._session
        return s is not None and bool(getattr(s, "refresh_jwt", None))

    def _refresh(self) -> bool:
        refresh = getattr(self._sdk, "_refresh_and_set_session", None)
        if refresh is None:
            return False
        try:
            refresh()
            return True
        except Exception:
            return False

    def _call(
        self,
        kind: str,
        nsid: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        op: str,
        safe: bool = True,
        base_url: str | None = None,
        rewind: Callable[[], None] | None = None,
        retry: bool = True,
        check: Callable[[], Any] | None = None,
        errors: Callable[[_Failure, str, bool], Exception] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One XRPC call with retries. Own PDS: through the SDK (session, refresh). Others: anonymous.
        ``errors``: see :meth:`_retrying_unlocked`. ``timeout``: this call's read/write timeout in
        seconds instead of the client's (the connect timeout stays at most 5 s)."""
        own = base_url is None or _same_server(base_url, self._pds_url)
        base = self._pds_url if own else _norm_url(base_url or "")
        url = f"{base}/xrpc/{nsid}"
        hdrs = dict(headers or {})
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=min(5.0, timeout))

        def send(attempt: int) -> Any:
            if rewind is not None and attempt > 1:
                rewind()
            t0 = time.perf_counter()
            if own and self._sdk._session is not None:
                if kind == "query":
                    resp = self._sdk.invoke_query(
                        nsid, params=_Params(params or {}) or None, headers=hdrs, **extra
                    )
                else:
                    resp = self._sdk.invoke_procedure(
                        nsid,
                        params=_Params(params or {}) or None,
                        data=None,
                        content=content,
                        headers=hdrs,
                        **extra,
                    )
                out = resp.content
            else:
                r = self._http.request(
                    "GET" if kind == "query" else "POST",
                    url,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    content=content,
                    headers=hdrs,
                    **extra,
                )
                if not 200 <= r.status_code < 300:
                    raise _Failure(_httpx_response(r, url), None, url)
                out = r.json() if "json" in r.headers.get("content-type", "") else r.content
            log.debug("%s %s ok in %.1f ms", kind, nsid, (time.perf_counter() - t0) * 1000)
            return out

        return self._retrying(send, url=url, op=op, safe=safe, retry=retry, check=check, errors=errors)

    def _stream_get(
        self, url: str, params: Mapping[str, Any], consume: Callable[[httpx.Response], Any]
    ) -> Any:
        """One anonymous streamed GET (run it inside :meth:`_retrying`, which retries it): an error
        answer raises a failure for the retry policy; a success is handed to ``consume`` as it streams."""
        with self._http.stream("GET", url, params=dict(params)) as r:
            if not 200 <= r.status_code < 300:
                r.read()
                raise _Failure(_httpx_response(r, url), None, url)
            return consume(r)
