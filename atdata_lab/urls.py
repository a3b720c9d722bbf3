"""Shard locations: brace patterns, local paths, ``file://`` and fsspec URLs, and the trust policy
for locations taken from other people's records.

Remote reads are bounded: a block read never holds more than the block it asked for, even from a
host that ignores ``Range`` and sends the whole file (the body is streamed and cut); ``http(s)`` is
read with our own client, ``s3`` through s3fs with the body streamed the same way.

The trust policy (:class:`TrustPolicy`, :func:`check_remote_url`) decides which locations named by
a published record may be read: ``https``/``http`` on public addresses, ``s3`` and PDS blobs. Local
files, chained fsspec URLs and internal addresses (loopback, private, link-local, ...) are refused
unless a setting allows them. A ``storage_options`` dict may carry the policy under
:data:`TRUST_OPTION`; every connection made for such a dataset then checks the addresses it
actually connects to (so a DNS answer that changes after the check cannot send it elsewhere).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from .errors import (
    InvalidArgumentError,
    RemoteAccessDeniedError,
    RemoteUnavailableError,
    ShardError,
    ShardNotFoundError,
    UntrustedSourceError,
)

# Remote shards are read in blocks this large: few requests, memory bounded by one block.
REMOTE_BLOCK = 32 << 20
#: The ``storage_options`` key that carries the :class:`TrustPolicy` a dataset's URLs were checked against.
TRUST_OPTION = "atdata_trust"
#: The ``storage_options`` key that carries a data source (``list_shards``/``open_shard``) whose
#: shards, named ``datasource://<shard id>``, are read through its ``open_shard``.
SOURCE_OPTION = "atdata_source"
SOURCE_SCHEME = "datasource://"

__all__ = [
    "SOURCE_OPTION",
    "TRUST_OPTION",
    "TrustPolicy",
    "check_remote_url",
    "credentials_allowed",
    "expand_urls",
    "is_local",
    "local_path",
    "note_configured_endpoint",
    "only_on_this_machine",
    "open_url",
    "read_range",
    "resolve_trust",
    "url_size",
]

_BRACE = re.compile(r"\{([^{}]*)\}")


def _expand_braces(pattern: str) -> list[str]:
    m = _BRACE.search(pattern)
    if not m:
        return [pattern]
    inner = m.group(1)
    head, tail = pattern[: m.start()], pattern[m.end() :]
    rng = re.fullmatch(r"(\d+)\.\.(\d+)", inner)
    if rng:
        a, b = rng.group(1), rng.group(2)
        width = len(a) if a.startswith("0") or len(a) == len(b) else 0
        lo, hi = int(a), int(b)
        step = 1 if hi >= lo else -1
        options = [str(i).zfill(width) for i in range(lo, hi + step, step)]
    else:
        options = inner.split(",")
    out: list[str] = []
    for opt in options:
        out.extend(_expand_braces(head + opt + tail))
    return out


def expand_urls(urls: str | os.PathLike | list | tuple) -> list[str]:
    """Expand brace patterns (``data-{000000..000009}.tar``, ``{a,b}``) into a list of URLs."""
    if isinstance(urls, (str, os.PathLike)):
        urls = [urls]
    out: list[str] = []
    for u in urls:
        out.extend(_expand_braces(os.fspath(u)))
    return out


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def only_on_this_machine(url: str) -> bool:
    """True when nobody else can read ``url``: a local path, ``file://``, or a loopback host
    (``localhost``, ``127.0.0.0/8``, ``::1``, ``0.0.0.0``)."""
    if is_local(url):
        return True
    try:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


# ---------------------------------------------------------------------------------------------
# the trust policy
# ---------------------------------------------------------------------------------------------


def _env_list(name: str) -> frozenset[str]:
    return frozenset(
        x.strip().lower() for x in os.environ.get(name, "").replace(";", ",").split(",") if x.strip()
    )


@dataclass(frozen=True)
class TrustPolicy:
    """Which locations named by other people's dataset records may be read, and where your S3
    credentials may go. Records you published yourself (the index's atmosphere account, or any
    account logged in with :class:`~atdata_lab.atmosphere.Atmosphere` in this process) are exempt.

    The default (``TrustPolicy.from_env()``, what ``trust=None`` means) allows ``https``/``http``
    URLs whose host resolves only to public addresses, ``s3://`` objects and PDS blobs.

    Attributes:
        allow_local: Also allow local files (paths, ``file://``) and internal addresses (loopback,
            private, link-local, unspecified, multicast). Env: ``ATDATA_ALLOW_LOCAL_URLS=1``.
        trusted_hosts: ``host`` or ``host:port`` entries allowed although internal (the sandbox
            exports its PDS as one). Env: ``ATDATA_TRUSTED_HOSTS=127.0.0.1:2583,...``.
        trusted_dids: Publishers whose records are trusted like your own (any URL).
            Env: ``ATDATA_TRUSTED_DIDS=did:plc:...,...``.
        credential_endpoints: S3 endpoint URLs (or hosts) that may receive your AWS credentials,
            besides the stores you configured and ``AWS_ENDPOINT_URL``.
            Env: ``ATDATA_S3_CREDENTIAL_ENDPOINTS=https://s3.example.org,...``.
        trust_all: Trust the record completely (``trust=True``): any URL, as if you had published it.
    """

    allow_local: bool = False
    trusted_hosts: frozenset[str] = field(default_factory=frozenset)
    trusted_dids: frozenset[str] = field(default_factory=frozenset)
    credential_endpoints: frozenset[str] = field(default_factory=frozenset)
    trust_all: bool = False

    def __post_init__(self) -> None:
        for name in ("trusted_hosts", "trusted_dids", "credential_endpoints"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [value]
            object.__setattr__(self, name, frozenset(str(v).strip().lower() for v in value))

    @classmethod
    def from_env(cls, **overrides: Any) -> TrustPolicy:
        """The policy the environment configures (see the attributes), with ``overrides`` applied."""
        policy = cls(
            allow_local=os.environ.get("ATDATA_ALLOW_LOCAL_URLS", "").strip().lower()
            in ("1", "true", "yes", "on"),
            trusted_hosts=_env_list("ATDATA_TRUSTED_HOSTS"),
            trusted_dids=_env_list("ATDATA_TRUSTED_DIDS"),
            credential_endpoints=_env_list("ATDATA_S3_CREDENTIAL_ENDPOINTS"),
        )
        return replace(policy, **overrides) if overrides else policy

    def trusts_publisher(self, did: str | None) -> bool:
        return self.trust_all or (did is not None and did.lower() in self.trusted_dids)

    def _host_trusted(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return host in self.trusted_hosts or (
            port is not None and f"{_bracket(host)}:{port}" in self.trusted_hosts
        )


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def resolve_trust(trust: Any) -> TrustPolicy:
    """``trust=`` as given to ``load_dataset``/``load_published``: ``None`` -> the environment's
    policy, ``True`` -> trust the record completely, a :class:`TrustPolicy` -> that policy."""
    if trust is None:
        return TrustPolicy.from_env()
    if trust is True:
        return TrustPolicy.from_env(trust_all=True)
    if trust is False:
        return TrustPolicy()
    if isinstance(trust, TrustPolicy):
        return trust
    raise InvalidArgumentError(
        f"trust= takes None, True, False or an atdata_lab.urls.TrustPolicy, not {trust!r:.80}"
    )


_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?\Z"
)
_getaddrinfo = socket.getaddrinfo  # tests and the fuzzer put a fake resolver here


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, unspecified, multicast, reserved... anything not public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:  # 64:ff9b::a.b.c.d reaches a.b.c.d through a NAT64 gateway
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and _internal(inner):
            return True
    return not ip.is_global or ip.is_multicast


def _refuse(what: str, url: str, record_uri: str | None, why: str, fix: str) -> UntrustedSourceError:
    where = f" named by {record_uri}" if record_uri else ""
    return UntrustedSourceError(f"refused to read the {what} {url!r:.300}{where}: {why}; {fix}")


_LOCAL_FIX = (
    "to read it anyway pass trust=TrustPolicy(allow_local=True) (or trust=True to trust this "
    "publisher's record completely), or set ATDATA_ALLOW_LOCAL_URLS=1"
)


def allowed_addresses(
    host: str,
    port: int,
    policy: TrustPolicy | None,
    *,
    url: str = "",
    record_uri: str | None = None,
    what: str = "shard",
) -> list[str]:
    """The addresses of ``host`` a connection may use under ``policy``: every address the name
    resolves to is checked (IPv4 and IPv6), and one internal address refuses the host, unless the
    policy allows internal addresses or trusts the host or that address."""
    host = host.strip("[]")
    try:
        infos = _getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise RemoteUnavailableError(f"cannot resolve the host {host!r} of {url or host} ({e})") from None
    addrs: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in addrs:
            addrs.append(addr)
    if policy is None or policy.trust_all or policy.allow_local or policy._host_trusted(host, port):
        return addrs
    for addr in addrs:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
        if _internal(ip) and not policy._host_trusted(str(ip), port):
            raise _refuse(
                what,
                url or f"{_bracket(host)}:{port}",
                record_uri,
                f"its host {host} resolves to the internal address {ip}",
                "to allow this host add it to ATDATA_TRUSTED_HOSTS (host:port) or "
                "TrustPolicy(trusted_hosts=...); " + _LOCAL_FIX,
            )
    if not addrs:
        raise RemoteUnavailableError(f"the host {host!r} of {url or host} has no address")
    return addrs


def check_remote_url(
    url: Any,
    *,
    trusted: Any = None,
    record_uri: str | None = None,
    own: bool = False,
    what: str = "shard",
    resolve: bool = True,
) -> str:
    """Check a location taken from a published record against the trust policy; returns it.

    Allowed: ``https``/``http`` URLs whose host resolves only to public addresses (every address is
    checked, IPv6 too), and ``s3://bucket/key`` objects. Refused, unless ``own`` (a record of the
    current user) or the policy allows it: local paths, ``file://``, ``local://``, ``memory://`` and
    every other scheme, chained fsspec URLs (``a::b``), and hosts on internal addresses.

    Args:
        url: The location.
        trusted: A :class:`TrustPolicy`, or ``None``/``True``/``False`` as for :func:`resolve_trust`.
        record_uri: The record that names it (for the message).
        own: The record was published by the current user: every location is allowed.
        what: What the location is (``"shard"``, ``"S3 endpoint"``, ``"PDS"``), for the message.
        resolve: Resolve the host name and check its addresses (``False``: only literal addresses).

    Raises:
        UntrustedSourceError: (a ``PermissionError``) naming the record, the URL and the setting
            that allows it.
        RemoteUnavailableError: The host name does not resolve.
    """
    policy = resolve_trust(trusted)
    if own or policy.trust_all:
        if not isinstance(url, str):
            raise _refuse(what, repr(url), record_uri, "it is not a string", "the record is malformed")
        return url
    if not isinstance(url, str) or not url or len(url) > 8192:
        raise _refuse(what, str(url)[:100], record_uri, "it is not a URL", "the record is malformed")
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise _refuse(
            what, url, record_uri, "it holds spaces or control characters", "the record is malformed"
        )
    if "::" in re.sub(r"^(https?://)\[[^\]/]*\]", r"\1", url, flags=re.IGNORECASE):  # not an IPv6 host's ::
        raise _refuse(
            what,
            url,
            record_uri,
            "chained fsspec URLs are not read from other people's records",
            "only https/http, s3 and PDS blobs are; to read it anyway pass trust=True (or add the "
            "publisher to ATDATA_TRUSTED_DIDS)",
        )
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("", "file", "local"):
        if policy.allow_local:
            return url
        raise _refuse(what, url, record_uri, "it is a local file", _LOCAL_FIX)
    if scheme == "s3":
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-_]{1,254}(/[^?#]*)?", url, flags=re.IGNORECASE):
            raise _refuse(
                what, url, record_uri, "it is not an s3://bucket/key URL", "the record is malformed"
            )
        return url
    if scheme not in ("http", "https"):
        raise _refuse(
            what,
            url,
            record_uri,
            f"the scheme {scheme!r} is not read from other people's records",
            "only https/http, s3 and PDS blobs are; to read it anyway pass trust=True (or add the "
            "publisher to ATDATA_TRUSTED_DIDS)",
        )
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
        if "\\" in url or "@" in parts.netloc:  # parsers disagree on these: never guess which host is meant
            host = None
    except ValueError:
        host = None
    if not host or not (_HOSTNAME.fullmatch(host) or _is_ip(host)):
        raise _refuse(
            what,
            url,
            record_uri,
            "its host is not a valid host name or address (no user@, no backslashes)",
            "the record is malformed",
        )
    if policy.allow_local or policy._host_trusted(host, port):
        return url
    if _is_ip(host):
        ip = ipaddress.ip_address(host)
        if _internal(ip):
            raise _refuse(
                what,
                url,
                record_uri,
                f"its host is the internal address {ip}",
                "to allow this host add it to ATDATA_TRUSTED_HOSTS (host:port) or "
                "TrustPolicy(trusted_hosts=...); " + _LOCAL_FIX,
            )
        return url
    if resolve:
        allowed_addresses(host, port, policy, url=url, record_uri=record_uri, what=what)
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


# S3 endpoints the user configured in this process (an S3DataStore, an index's store): only these,
# AWS_ENDPOINT_URL and the policy's credential_endpoints receive credentials for a record's objects.
_configured_endpoints: set[str] = set()


def _endpoint_key(endpoint: str) -> str:
    try:
        parts = urllib.parse.urlsplit(endpoint.strip())
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"{parts.scheme.lower()}://{_bracket(host)}:{port}"
    except ValueError:
        return endpoint.strip().lower()


def note_configured_endpoint(endpoint: str | None) -> None:
    """Remember an S3 endpoint the user configured (stores call this): it may receive credentials."""
    if endpoint:
        _configured_endpoints.add(_endpoint_key(endpoint))


def credentials_allowed(
    endpoint: str | None, policy: TrustPolicy | None = None, *, also: tuple[str, ...] = ()
) -> bool:
    """May your S3 credentials be sent to ``endpoint`` (``None``: AWS itself)?

    Yes for AWS, for endpoints of stores configured in this process, ``AWS_ENDPOINT_URL``, the
    policy's ``credential_endpoints`` and ``also``; no for any other endpoint a record names.
    """
    if not endpoint:
        return True
    key = _endpoint_key(endpoint)
    allowed = set(_configured_endpoints) | {_endpoint_key(e) for e in also if e}
    if os.environ.get("AWS_ENDPOINT_URL"):
        allowed.add(_endpoint_key(os.environ["AWS_ENDPOINT_URL"]))
    for e in policy.credential_endpoints if policy is not None else ():
        allowed.add(_endpoint_key(e) if "://" in e else e)
    host = key.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return key in allowed or host in allowed


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def _split_options(storage_options: dict[str, Any] | None) -> tuple[dict[str, Any], TrustPolicy | None]:
    opts = dict(storage_options or {})
    policy = opts.pop(TRUST_OPTION, None)
    opts.pop(SOURCE_OPTION, None)
    return opts, policy if isinstance(policy, TrustPolicy) and not policy.trust_all else None


def source_url(shard_id: str) -> str:
    """The URL a dataset gives a shard that a data source streams (see :data:`SOURCE_OPTION`)."""
    return SOURCE_SCHEME + shard_id


def source_shard_id(url: str) -> str | None:
    """The data source's own shard id of a ``datasource://`` URL, else None."""
    return url[len(SOURCE_SCHEME) :] if url.startswith(SOURCE_SCHEME) else None


def _stream_source(url: str, storage_options: dict[str, Any] | None) -> _StreamSource | None:
    shard_id = source_shard_id(url)
    if shard_id is None:
        return None
    source = (storage_options or {}).get(SOURCE_OPTION)
    if source is None:
        raise InvalidArgumentError(f"{url} is read through a data source, and none was given")
    return _StreamSource(source, shard_id, url)


def _is_http(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


def open_url(url: str, storage_options: dict[str, Any] | None = None) -> BinaryIO:
    """Open a shard for reading (local files directly, ``http(s)`` with our client, others through fsspec)."""
    if is_local(url):
        try:
            return open(local_path(url), "rb", buffering=0)
        except FileNotFoundError:
            raise ShardNotFoundError(f"shard not found: {url}") from None
        except PermissionError as e:
            raise RemoteAccessDeniedError(f"cannot read the shard {url}: {e.strerror or e}") from None
    streamed = _stream_source(url, storage_options)
    if streamed is not None:
        return _RangeReader(streamed, url)  # type: ignore[return-value]  # a read-only file
    opts, policy = _split_options(storage_options)
    if _is_http(url):
        return _RangeReader(_HttpSource(url, policy), url)  # type: ignore[return-value]  # a read-only file
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **opts)
    return _RangeReader(_FsSource(fs, path, url), url)  # type: ignore[return-value]


_readahead_pool: Any = None
_readahead_pid = 0


def _pool() -> Any:
    """The readahead threads of this process (a forked DataLoader worker gets its own: the
    parent's threads do not exist in the child)."""
    global _readahead_pool, _readahead_pid
    if _readahead_pool is None or _readahead_pid != os.getpid():
        _readahead_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="atdata-readahead")
        _readahead_pid = os.getpid()
    return _readahead_pool


# -- http(s): our own client, bounded, every connection checked against the dataset's policy ----


class _CheckedBackend:
    """An httpcore network backend that connects only to addresses the policy allows: the host
    name is resolved here, each address checked, and the socket connected to a checked address."""

    def __init__(self, policy: TrustPolicy) -> None:
        import httpcore

        self.policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        import httpcore

        last: Exception | None = None
        for addr in allowed_addresses(host, port, self.policy, url=f"{_bracket(host)}:{port}"):
            try:
                return self._inner.connect_tcp(
                    addr, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise UntrustedSourceError("unix sockets are never used for shards")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


_clients: dict[tuple[int, TrustPolicy | None], Any] = {}
_clients_lock = threading.Lock()


def _http_client(policy: TrustPolicy | None) -> Any:
    """One httpx client per policy and process (``None``: URLs the user gave, no checks)."""
    import httpx

    key = (os.getpid(), policy)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            timeout = httpx.Timeout(60.0, connect=10.0)
            if policy is None:
                client = httpx.Client(timeout=timeout, follow_redirects=True)
            else:
                import httpcore

                transport = httpx.HTTPTransport()
                transport._pool = httpcore.ConnectionPool(  # the same pool, with a checking network backend
                    ssl_context=httpx.create_ssl_context(),
                    max_connections=100,
                    max_keepalive_connections=20,
                    keepalive_expiry=5.0,
                    network_backend=_CheckedBackend(policy),  # type: ignore[arg-type]
                )
                # trust_env=False: a proxy from the environment would connect for us, unchecked
                client = httpx.Client(
                    timeout=timeout, follow_redirects=True, transport=transport, trust_env=False
                )
            _clients[key] = client
    return client


def _http_failure(url: str, status: int) -> Exception:
    if status in (404, 410):
        return ShardNotFoundError(f"shard not found: {url} (HTTP {status})")
    if status in (401, 403):
        return RemoteAccessDeniedError(
            f"access to {url} was refused (HTTP {status}); the data is not public, or needs credentials"
        )
    if status >= 500 or status == 429:
        return RemoteUnavailableError(f"{url} failed with HTTP {status}; try again later")
    return ShardError(f"cannot read {url}: HTTP {status}")


@contextlib.contextmanager
def _http_errors(url: str):
    import httpx

    try:
        yield
    except httpx.TimeoutException as e:
        raise RemoteUnavailableError(f"{url} did not answer in time ({type(e).__name__})") from None
    except httpx.TransportError as e:
        raise RemoteUnavailableError(f"cannot read {url}: {type(e).__name__} ({str(e)[:200]})") from None
    except httpx.HTTPError as e:
        raise ShardError(f"cannot read {url}: {type(e).__name__} ({str(e)[:200]})") from None


class _HttpSource:
    """Blocks of an ``http(s)`` URL read sequentially from one streaming GET.

    A block never holds more than asked: the body is streamed and cut, so a host that ignores
    ``Range`` (or sends more than asked) costs time, never memory.
    """

    def __init__(self, url: str, policy: TrustPolicy | None) -> None:
        self.url, self.policy = url, policy
        self._resp: Any = None
        self._chunks: Any = None
        self._left = b""
        self._pos = 0

    def _open(self, pos: int, end: int | None = None) -> None:
        """Start a GET at ``pos`` (up to ``end`` when known: the server then sends no more)."""
        self.close()
        client = _http_client(self.policy)
        if end is not None:
            headers = {"Range": f"bytes={pos}-{end - 1}"}
        else:
            headers = {"Range": f"bytes={pos}-"} if pos else {}
        with _http_errors(self.url):
            req = client.build_request("GET", self.url, headers=headers)
            resp = client.send(req, stream=True)
        if resp.status_code == 416:
            resp.close()
            self._resp, self._chunks, self._pos = None, iter(()), pos
            return
        if resp.status_code not in (200, 206):
            resp.close()
            raise _http_failure(self.url, resp.status_code)
        self._resp, self._chunks = resp, resp.iter_bytes(1 << 20)
        self._pos = 0 if resp.status_code == 200 else pos
        while self._pos < pos:  # Range ignored: skip (streamed, nothing kept)
            chunk = self._next()
            if not chunk:
                break
            self._pos += len(chunk)
            if self._pos > pos:
                self._left = chunk[len(chunk) - (self._pos - pos) :]
                self._pos = pos

    def _next(self) -> bytes:
        if self._left:
            chunk, self._left = self._left, b""
            return chunk
        with _http_errors(self.url):
            return next(self._chunks, b"")

    def block(self, pos: int, n: int) -> bytes:
        if self._chunks is None or pos != self._pos:
            self._open(pos)
        out = bytearray()
        while len(out) < n:
            chunk = self._next()
            if not chunk:
                self.close()
                break
            take = n - len(out)
            if len(chunk) > take:
                self._left = chunk[take:]
                chunk = chunk[:take]
            out += chunk
        self._pos += len(out)
        return bytes(out)

    def read_range(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` in one request for exactly that range (the body is cut at
        ``size`` too, for servers that ignore ``Range``)."""
        if size <= 0:
            return b""
        try:
            self._open(offset, offset + size)
            return self.block(offset, size) if self._chunks is not None else b""
        finally:
            self.close()

    def size(self) -> int:
        client = _http_client(self.policy)
        with _http_errors(self.url):
            r = client.head(self.url)
        if r.status_code >= 400:
            raise _http_failure(self.url, r.status_code)
        declared = r.headers.get("content-length", "")
        if declared.isdigit():
            return int(declared)
        raise ShardError(f"cannot tell the size of {self.url}: the host sends no Content-Length")

    def close(self) -> None:
        resp, self._resp, self._chunks, self._left = self._resp, None, None, b""
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.close()


# -- fsspec (s3 and others) ---------------------------------------------------------------------


class _FsSource:
    """Blocks of a file in an fsspec filesystem; for S3 the body is streamed and cut at the block."""

    def __init__(self, fs: Any, path: str, url: str) -> None:
        self.fs, self.path, self.url = fs, path, url

    def block(self, pos: int, n: int) -> bytes:
        try:
            if hasattr(self.fs, "_call_s3"):
                return _s3_range(self.fs, self.path, pos, pos + n)
            data = self.fs.cat_file(self.path, start=pos, end=pos + n)
        except (OSError, ValueError, TypeError, KeyError):
            raise
        except Exception as e:  # botocore/aiohttp transport errors are not OSErrors
            raise RemoteUnavailableError(
                f"cannot read {self.url}: {type(e).__name__} ({str(e)[:200]})"
            ) from None
        if len(data) > n and len(data) >= pos + n:  # a server that ignores Range sent it all
            data = data[pos : pos + n]
        return data[:n]

    def read_range(self, offset: int, size: int) -> bytes:
        return self.block(offset, size)

    def size(self) -> int:
        return int(self.fs.size(self.path))

    def close(self) -> None:
        pass


def _s3_range(fs: Any, path: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of an S3 object with the response body streamed and cut at ``end``
    (s3fs's ``cat_file`` reads a whole body into memory, however large the server makes it)."""
    from fsspec.asyn import sync

    bucket, key, version = fs.split_path(path)
    kw: dict[str, Any] = {"VersionId": version} if version else {}

    async def go() -> bytes:
        resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **kw)
        body = resp["Body"]
        try:
            status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            skip = start if status == 200 else 0  # the server ignored Range: skip to start, keep nothing
            out = bytearray()
            while len(out) < end - start:
                chunk = await body.read(1 << 20)
                if not chunk:
                    break
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                out += chunk[: end - start - len(out)]
            return bytes(out)
        finally:
            body.close()

    return sync(fs.loop, go)


# -- data sources: shards a user's object streams (atdata's DataSource protocol) ---------------


class _StreamSource:
    """Blocks of a shard that a data source opens as a stream (``source.open_shard(shard_id)``).

    Blocks are read in order from one open stream; a block before the current position reopens
    it, one after skips ahead (a seek when the stream can, else reading and dropping bytes), so
    random access works on any stream, at the cost of reading up to the offset.
    """

    _SKIP = 1 << 20

    def __init__(self, source: Any, shard_id: str, url: str) -> None:
        self.source, self.shard_id, self.url = source, shard_id, url
        self._f: Any = None
        self._pos = 0

    def _open(self) -> None:
        try:
            self._f = self.source.open_shard(self.shard_id)
        except KeyError as e:  # not listed, or (a blob) not on its PDS
            why = str(e.args[0]) if e.args else "its data source does not have it"
            raise ShardNotFoundError(f"shard not found: {self.url} ({why[:300]})") from None
        self._pos = 0

    def _seekable(self) -> bool:
        try:
            return bool(self._f.seekable())
        except (AttributeError, OSError, ValueError):
            return False

    def _move_to(self, pos: int) -> None:
        if self._f is None or pos < self._pos:
            self.close()
            self._open()
        if pos > self._pos and self._seekable():
            self._f.seek(pos)
            self._pos = pos
        while self._pos < pos:
            got = self._f.read(min(self._SKIP, pos - self._pos))
            if not got:
                return
            self._pos += len(got)

    def block(self, pos: int, n: int) -> bytes:
        self._move_to(pos)
        if self._pos < pos:
            return b""  # past the end
        parts: list[bytes] = []
        want = n
        while want > 0:
            got = self._f.read(want)
            if not got:
                break
            parts.append(bytes(got))
            want -= len(got)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def read_range(self, offset: int, size: int) -> bytes:
        return self.block(offset, size)

    def size(self) -> int:
        self._move_to(0)
        if self._seekable():
            return int(self._f.seek(0, os.SEEK_END))
        total = 0
        while got := self._f.read(self._SKIP):
            total += len(got)
        self.close()
        return total

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()


class _RangeReader:
    """Sequential reads of a remote file in blocks of REMOTE_BLOCK bytes (no HEAD, no cache).

    While one block is consumed, the next is already being fetched in the background (one block of
    readahead, so memory stays bounded by two blocks). ``prefetch()`` starts the first block early,
    and ``on_eof`` (if set) is called once the last block has arrived: the dataset reader uses it
    to start fetching the next shard while this one is decoded.
    """

    def __init__(self, source: Any, url: str) -> None:
        self.source, self.url = source, url
        self.pos = 0  # file offset of the next block to fetch
        self.buf = b""
        self.off = 0  # bytes of buf already read
        self.eof = False
        self.on_eof: Any = None
        self._next: Any = None  # the Future of the block at self.pos

    def _get(self, pos: int) -> bytes:
        return self.source.block(pos, REMOTE_BLOCK)

    def prefetch(self) -> None:
        """Start fetching the next block in the background (if not started and not at the end)."""
        if self._next is None and not self.eof:
            self._next = _pool().submit(self._get, self.pos)

    def _fetch(self) -> bytes:
        fut, self._next = self._next, None
        try:
            block = fut.result() if fut is not None else self._get(self.pos)
        except FileNotFoundError as e:
            if self.pos == 0:
                if isinstance(e, ShardNotFoundError):
                    raise
                raise ShardNotFoundError(f"shard not found: {self.url}") from None
            block = b""  # a range that starts at the end
        except (UntrustedSourceError, RemoteUnavailableError, RemoteAccessDeniedError):
            raise
        except PermissionError as e:
            raise RemoteAccessDeniedError(f"access to {self.url} was refused ({str(e)[:200]})") from None
        except OSError as e:
            if self.pos == 0:
                if isinstance(e, ShardNotFoundError | ConnectionError):
                    raise
                raise RemoteUnavailableError(f"cannot read {self.url}: {str(e)[:200]}") from None
            block = b""  # S3 answers InvalidRange for a range past the end
        if len(block) > REMOTE_BLOCK:
            block = block[:REMOTE_BLOCK]
        self.pos += len(block)
        self.eof = len(block) < REMOTE_BLOCK
        if not self.eof:
            self.prefetch()
        elif self.on_eof is not None:
            callback, self.on_eof = self.on_eof, None
            callback()
        return block

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the file); a whole block is not copied."""
        want = (1 << 62) if n is None or n < 0 else n
        parts: list[bytes] = []
        while want > 0:
            avail = len(self.buf) - self.off
            if avail == 0:
                if self.eof:
                    break
                self.buf, self.off = self._fetch(), 0
                continue
            if self.off == 0 and want >= avail:
                part, self.buf = self.buf, b""
            else:
                part = self.buf[self.off : self.off + want]
                self.off += len(part)
            parts.append(part)
            want -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self.buf, self.off = b"", 0
        self.on_eof = None
        if self._next is not None:
            self._next.cancel()  # a fetch already running finishes in the background, unread
            self._next = None
        self.source.close()

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _source(url: str, storage_options: dict[str, Any] | None) -> Any:
    streamed = _stream_source(url, storage_options)
    if streamed is not None:
        return streamed
    opts, policy = _split_options(storage_options)
    if _is_http(url):
        return _HttpSource(url, policy)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **opts)
    return _FsSource(fs, path, url)


def read_range(url: str, offset: int, size: int, storage_options: dict[str, Any] | None = None) -> bytes:
    """Read ``size`` bytes at ``offset`` (one seek on disk; one ranged request remotely, whose body
    is cut at ``size`` however much the server sends)."""
    if is_local(url):
        try:
            fd = os.open(local_path(url), os.O_RDONLY)
        except FileNotFoundError:
            raise ShardNotFoundError(
                f"shard not found: {url} (deleted since the dataset was opened?)"
            ) from None
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)
    src = _source(url, storage_options)
    try:
        return src.read_range(offset, size)
    except FileNotFoundError:
        raise ShardNotFoundError(f"shard not found: {url}") from None
    finally:
        src.close()


def url_size(url: str, storage_options: dict[str, Any] | None = None) -> int:
    if is_local(url):
        try:
            return os.path.getsize(local_path(url))
        except FileNotFoundError:
            raise ShardNotFoundError(f"shard not found: {url}") from None
    src = _source(url, storage_options)
    try:
        return src.size()
    except FileNotFoundError:
        raise ShardNotFoundError(f"shard not found: {url}") from None
