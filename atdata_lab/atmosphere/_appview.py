"""The AppView side of the client: XRPC queries to an AppView, procedures proxied through the PDS.

An AppView (atdata's ``atdata-app``) indexes ``science.alt.dataset.*`` records from every repository
on the network and answers searches and lookups over XRPC. :class:`AppViewClient` is the base of
:class:`~atdata_lab.atmosphere.Atmosphere` that talks to it, through the one transport
(:class:`~atdata_lab.atmosphere._http.XrpcClientBase`: retries, response bounds, round-trip count):

* the AppView is named by ``appview=`` (an ``http(s)://`` URL or a ``did:web:`` DID), else by
  ``$ATDATA_APPVIEW_URL`` (or atdata's ``$ATDATA_APPVIEW``); ``appview=""`` means none;
* :meth:`AppViewClient.xrpc_query` sends a GET straight to the AppView (public, no session);
  :meth:`AppViewClient.xrpc_procedure` POSTs to our PDS with ``atproto-proxy`` naming the AppView;
* failures become :class:`~atdata_lab.errors.AppViewUnavailableError` (no connection, timeout,
  5xx or 429 after the retries: a ``ConnectionError``), :class:`~atdata_lab.errors.AppViewError`
  (a refusal, or an answer that is not a JSON object) and
  :class:`~atdata_lab.errors.AppViewRequiredError` (none configured). Answers are read at most
  :data:`~atdata_lab.atmosphere._http.MAX_RESPONSE_BYTES` and nested at most
  :data:`~atdata_lab.atmosphere._http.MAX_JSON_DEPTH` deep, like every answer; what the fields of an
  answer mean is checked by its reader (:mod:`atdata_lab.search`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import httpx

from atdata_lab.atmosphere._http import PDSResponse, XrpcClientBase, _Failure, _norm_url, _short_exc
from atdata_lab.atmosphere.lexicon import _NSID_RE
from atdata_lab.errors import (
    AppViewError,
    AppViewRequiredError,
    AppViewUnavailableError,
    InvalidArgumentError,
    PDSUnavailableError,
    RequestError,
    ResponseTooLargeError,
)

__all__ = ["APPVIEW_ENV", "AppViewClient", "appview_from_env", "parse_appview"]

#: The environment variables that name the AppView, in order (ours, then atdata's ``from_env`` one).
APPVIEW_ENV = ("ATDATA_APPVIEW_URL", "ATDATA_APPVIEW")
#: The service id a PDS proxies AppView procedures to (``atproto-proxy: <did>#atdata_appview``).
APPVIEW_SERVICE_ID = "atdata_appview"
_MAX_PARAM_CHARS = 8192


def appview_from_env() -> str | None:
    """The AppView named by ``$ATDATA_APPVIEW_URL`` (or atdata's ``$ATDATA_APPVIEW``), if any."""
    for name in APPVIEW_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def parse_appview(value: str) -> tuple[str, str]:
    """``(base URL, did:web DID)`` of an AppView given as an ``http(s)://`` URL or a ``did:web:`` DID.

    Raises:
        InvalidArgumentError: Neither (the message shows both forms).
    """
    fix = "give an http(s) URL (e.g. http://127.0.0.1:8000) or a did:web DID (e.g. did:web:datasets.example)"
    if not isinstance(value, str) or not value.strip() or len(value) > 2048:
        raise InvalidArgumentError(f"appview={value!r:.100}: {fix}")
    value = value.strip()
    if value.startswith("did:web:"):
        host = unquote(value[len("did:web:") :].split(":", 1)[0])
        url = f"https://{host}"
        did = value
    elif value.startswith(("http://", "https://")):
        url = _norm_url(value)
        did = ""
    else:
        raise InvalidArgumentError(f"appview={value!r:.100}: {fix}")
    try:
        u = httpx.URL(url)
    except Exception:
        raise InvalidArgumentError(f"appview={value!r:.100}: {fix}") from None
    if not u.host or u.userinfo or u.query or u.fragment:
        raise InvalidArgumentError(f"appview={value!r:.100}: {fix} (no credentials, query or fragment)")
    if not did:
        host = u.host if u.port is None else f"{u.host}:{u.port}"
        did = "did:web:" + quote(host, safe=".")
    return url, did


def _check_params(params: Mapping[str, Any] | None, nsid: str) -> dict[str, Any]:
    """Query parameters: strings, ints, bools, or lists of strings (repeated); None is dropped."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"{nsid}: params must be a dict, not {type(params).__name__}")
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        if not isinstance(k, str) or not k.isidentifier():
            raise InvalidArgumentError(f"{nsid}: parameter name {k!r:.60} is not a plain name")
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (str, int)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        else:
            raise InvalidArgumentError(
                f"{nsid}: parameter {k!r} must be a str, int, bool or list of str, not {type(v).__name__}"
            )
        if len(str(out[k])) > _MAX_PARAM_CHARS:
            raise InvalidArgumentError(
                f"{nsid}: parameter {k!r} is longer than {_MAX_PARAM_CHARS} characters"
            )
    return out


class AppViewClient(XrpcClientBase):
    """The transport plus an AppView: the base of :class:`~atdata_lab.atmosphere.Atmosphere`.

    Args:
        pds_url: The PDS base URL (see :class:`~atdata_lab.atmosphere.Atmosphere`).
        appview: The AppView: an ``http(s)://`` URL or a ``did:web:`` DID. Default
            ``$ATDATA_APPVIEW_URL`` (or ``$ATDATA_APPVIEW``); ``""`` means none even if those are set.
        **options: The transport's (``timeout``, ``max_tries``, ``max_wait``, ``backoff``, ``transport``).
    """

    def __init__(self, pds_url: str, *, appview: str | None = None, **options: Any) -> None:
        super().__init__(pds_url, **options)
        self._appview_url: str | None = None
        self._appview_did: str | None = None
        if appview is None:
            appview = appview_from_env()
        if appview:
            self._appview_url, self._appview_did = parse_appview(appview)

    @property
    def has_appview(self) -> bool:
        """Whether an AppView is configured."""
        return self._appview_url is not None

    @property
    def appview_url(self) -> str | None:
        """The AppView's base URL, or None."""
        return self._appview_url

    @property
    def appview_did(self) -> str | None:
        """The AppView's ``did:web`` DID, or None."""
        return self._appview_did

    def _require_appview(self, what: str) -> str:
        if self._appview_url is None:
            raise AppViewRequiredError(what)
        return self._appview_url

    def _appview_error(self, f: _Failure, op: str, _over_budget: bool) -> Exception:
        """The AppView's error for a failed request to it (see the module doc)."""
        url = self._appview_url or f.url
        resp: PDSResponse | None = f.response
        if resp is None:
            t = f.transport
            if isinstance(t, httpx.TimeoutException):
                reason = f"no answer in time ({type(t).__name__})"
            else:
                reason = f"cannot connect ({_short_exc(t)})"
            return AppViewUnavailableError(url, f"{op}: {reason}")
        detail = f.text()[:300]
        if resp.status_code >= 500 or resp.status_code == 429:
            return AppViewUnavailableError(
                url,
                f"{op}: HTTP {resp.status_code} {detail}".rstrip(),
                status=resp.status_code,
                response=resp,
            )
        return AppViewError(
            f"the AppView at {url} refused to {op}: HTTP {resp.status_code} {detail}".rstrip(),
            url=url,
            status=resp.status_code,
            response=resp,
        )

    def xrpc_query(self, nsid: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call an XRPC query (GET) on the AppView; its JSON answer (an object).

        Queries are public: no session is sent. Safe to retry: 5xx, 429 and dropped connections
        are retried with backoff like every request.

        Args:
            nsid: The method, e.g. ``"science.alt.dataset.searchDatasets"``.
            params: Query parameters (str, int, bool, or a list of str sent repeated; None dropped).

        Raises:
            AppViewRequiredError: No AppView is configured.
            AppViewUnavailableError: It cannot be reached, or failed (5xx/429) after the retries.
            AppViewError: It refused (4xx), or answered something that is not a bounded JSON object.
        """
        if not isinstance(nsid, str) or not _NSID_RE.match(nsid):
            raise InvalidArgumentError(
                f"{nsid!r:.100} is not an XRPC method NSID (e.g. science.alt.dataset.getEntry)"
            )
        url = self._require_appview(nsid)
        query = _check_params(params, nsid)
        op = f"answer {nsid}"
        try:
            out = self._call("query", nsid, params=query, base_url=url, op=op, errors=self._appview_error)
        except ResponseTooLargeError as e:
            raise AppViewError(f"the AppView at {url}: {e}", url=url) from None
        except json.JSONDecodeError:
            raise AppViewError(
                f"the AppView at {url} answered {nsid} with text that is not JSON", url=url
            ) from None
        if not isinstance(out, dict):
            raise AppViewError(
                f"the AppView at {url} answered {nsid} with {type(out).__name__}, not a JSON object", url=url
            )
        return out

    def xrpc_procedure(self, nsid: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002 - atdata's name
        """Call an XRPC procedure (POST) on the AppView, through our PDS (``atproto-proxy``).

        Needs a logged-in session: the PDS forwards the call with a service token for the AppView's
        DID. Not retried after a failure that may have landed (a procedure may write).

        Raises:
            AppViewRequiredError: No AppView is configured.
            AuthenticationError: Not logged in.
            AppViewUnavailableError: The PDS could not reach the AppView (or it failed).
            AppViewError: The AppView refused, or answered something that is not a JSON object.
        """
        if not isinstance(nsid, str) or not _NSID_RE.match(nsid):
            raise InvalidArgumentError(f"{nsid!r:.100} is not an XRPC method NSID")
        url = self._require_appview(nsid)
        self._require_login(nsid)  # type: ignore[attr-defined]  # Atmosphere's
        if input is not None and not isinstance(input, Mapping):
            raise InvalidArgumentError(f"{nsid}: input must be a dict, not {type(input).__name__}")
        headers = {"atproto-proxy": f"{self._appview_did}#{APPVIEW_SERVICE_ID}"}
        try:
            out = self._call(
                "procedure", nsid, body=dict(input or {}), headers=headers, op=f"call {nsid}", safe=False
            )
        except PDSUnavailableError as e:
            if e.status is None:
                raise  # our PDS itself is down: its error says so
            raise AppViewUnavailableError(url, f"{nsid}: {e}", status=e.status, response=e.response) from None
        except RequestError as e:
            if e.status is not None and e.status >= 400 and type(e) is RequestError:
                raise AppViewError(
                    f"the AppView at {url} (through the PDS) refused {nsid}: {e}",
                    url=url,
                    status=e.status,
                    response=e.response,
                ) from None
            raise
        if not isinstance(out, dict):
            raise AppViewError(f"{nsid} answered {type(out).__name__}, not a JSON object", url=url)
        return out

    def describe_service(self) -> dict[str, Any]:
        """The AppView's ``describeService`` answer (its DID, collections, record counts)."""
        return self.xrpc_query("science.alt.dataset.describeService")
