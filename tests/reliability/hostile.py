"""Helpers of the hostile-publisher suite: small loopback servers that count what reaches them, a
publisher that writes records the way an attacker would (raw XRPC, no local validation), and a
file-tree fingerprint to prove nothing outside the cache was touched.

The servers stand in only for what a real part cannot be made to do: a data host that ignores
``Range`` or swaps bytes, an S3 endpoint chosen by a record (to count ``Authorization`` headers),
and a PDS that forges blob CIDs, hands out a fresh cursor forever, or answers absurd JSON. Each
test that uses one says so in its docstring.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.cid import BlobCID
from tests.reliability.support import ReliabilitySample, samples

# ------------------------------------------------------------------------------------------------
# servers
# ------------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a random port) that records every request it receives."""

    def __init__(self, handle: Callable[[Request], Response]) -> None:
        self.handle = handle
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = (
                True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
            )

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    dict(urllib.parse.parse_qsl(parts.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                )
                n = int(self.headers.get("content-length") or 0)
                if n:
                    self.rfile.read(n)
                with server._lock:
                    server.requests.append(req)
                resp = server.handle(req)
                body = resp.body
                self.send_response(resp.status)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                if isinstance(body, (bytes, bytearray)):
                    headers.setdefault("content-length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                if "content-length" not in headers:
                    self.send_header("connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                try:
                    if isinstance(body, (bytes, bytearray)):
                        self.wfile.write(body)
                    else:
                        for chunk in body:
                            self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def count(self, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if path_part in r.path)

    def authorized(self) -> int:
        """Requests that carried an ``Authorization`` header."""
        with self._lock:
            return sum(1 for r in self.requests if "authorization" in r.headers)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _range(req: Request, size: int) -> tuple[int, int] | None:
    spec = req.headers.get("range", "")
    if not spec.startswith("bytes="):
        return None
    a, _, b = spec[6:].partition("-")
    start = int(a)
    end = min(int(b) + 1, size) if b else size
    return start, end


def file_host(files: dict[str, bytes], *, honour_range: bool = True) -> Callable[[Request], Response]:
    """Serve ``files`` by path; ``honour_range=False`` is a host that ignores ``Range``."""

    def handle(req: Request) -> Response:
        data = files.get(req.path)
        if data is None:
            return Response(404, body=b"not found")
        r = _range(req, len(data)) if honour_range else None
        if r is None:
            return Response(200, {"content-type": "application/x-tar"}, data)
        start, end = r
        if start >= len(data):
            return Response(416, body=b"")
        return Response(206, {"content-range": f"bytes {start}-{end - 1}/{len(data)}"}, data[start:end])

    return handle


def endless_body(size: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """``size`` bytes made on the fly (the server holds one chunk, never the whole body)."""
    block = bytes(chunk)
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        yield block[:n]
        sent += n


def huge_host(size: int) -> Callable[[Request], Response]:
    """A host that ignores ``Range`` and answers every GET with a ``size``-byte body."""

    def handle(req: Request) -> Response:
        return Response(
            200, {"content-length": str(size), "content-type": "application/x-tar"}, endless_body(size)
        )

    return handle


def s3_host(objects: dict[str, bytes]) -> Callable[[Request], Response]:
    """An S3 endpoint for GET/HEAD of ``/<bucket>/<key>`` (anonymous access allowed)."""
    inner = file_host(objects)

    def handle(req: Request) -> Response:
        if req.method == "HEAD":
            data = objects.get(req.path)
            return Response(200 if data is not None else 404, {"content-length": str(len(data or b""))}, b"")
        resp = inner(req)
        if resp.status == 404:
            return Response(
                404,
                {"content-type": "application/xml"},
                b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>",
            )
        resp.headers.setdefault("etag", '"x"')
        return resp

    return handle


class FakePDS:
    """A PDS stand-in: ``getRecord``, ``listRecords``, ``describeRepo``, ``resolveHandle``, ``getBlob``.

    ``cursor``: ``"endless"`` (a fresh cursor and a full page forever), ``"repeat"`` (the same
    cursor again) or ``None``. ``record_body`` replaces every getRecord answer (bytes).
    """

    def __init__(
        self, did: str, *, cursor: str | None = None, record_body: Callable[[], Any] | None = None
    ) -> None:
        self.did = did
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.cursor = cursor
        self.record_body = record_body
        self.server = LoopbackServer(self.handle)

    def handle(self, req: Request) -> Response:
        nsid = req.path.rsplit("/", 1)[-1]
        q = req.query
        if nsid == "com.atproto.repo.getRecord":
            if self.record_body is not None:
                return Response(200, {"content-type": "application/json"}, self.record_body())
            value = self.records.get((q.get("collection", ""), q.get("rkey", "")))
            if value is None:
                return _json(400, {"error": "RecordNotFound", "message": "Could not locate record"})
            return _json(
                200,
                {
                    "uri": f"at://{self.did}/{q['collection']}/{q['rkey']}",
                    "cid": "bafyreixyz",
                    "value": value,
                },
            )
        if nsid == "com.atproto.repo.listRecords":
            cursor = q.get("cursor", "0") or "0"
            page = int(cursor) if cursor.isdigit() else 0
            mine = [
                {"uri": f"at://{self.did}/{c}/{k}", "cid": "bafyreixyz", "value": v}
                for (c, k), v in self.records.items()
                if c == q.get("collection")
            ]
            if self.cursor == "endless":
                filler = [
                    {
                        "uri": f"at://{self.did}/{q.get('collection')}/p{page}r{i}",
                        "cid": "bafyreixyz",
                        "value": {"name": f"other-{page}-{i}", "datasetUri": "at://x"},
                    }
                    for i in range(100)
                ]
                return _json(200, {"records": filler, "cursor": str(page + 1)})
            if self.cursor == "repeat":
                return _json(
                    200,
                    {
                        "records": (mine * 100)[:100] or [{"uri": "u", "cid": "c", "value": {}}] * 100,
                        "cursor": "same",
                    },
                )
            return _json(200, {"records": mine})
        if nsid == "com.atproto.repo.describeRepo":
            return _json(
                200,
                {
                    "did": self.did,
                    "handle": "standin.test",
                    "didDoc": {
                        "id": self.did,
                        "service": [
                            {
                                "id": "#atproto_pds",
                                "type": "AtprotoPersonalDataServer",
                                "serviceEndpoint": self.server.url,
                            }
                        ],
                    },
                },
            )
        if nsid == "com.atproto.identity.resolveHandle":
            return _json(200, {"did": self.did})
        if nsid == "com.atproto.sync.getBlob":
            data = self.blobs.get(q.get("cid", ""))
            if data is None:
                return _json(400, {"error": "BlobNotFound", "message": "Blob not found"})
            return Response(200, {"content-type": "application/octet-stream"}, data)
        return _json(404, {"error": "MethodNotImplemented"})

    def __enter__(self) -> FakePDS:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url


def _json(status: int, value: Any) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(value).encode())


# ------------------------------------------------------------------------------------------------
# records and data
# ------------------------------------------------------------------------------------------------

SAMPLE_TYPE = ReliabilitySample


def shard_bytes(tmp: Path, n: int = 20, seed: int = 0, name: str = "good") -> bytes:
    """One real shard of ``n`` samples, as bytes."""
    ds = atdata.write_samples(samples(n, dim=16, seed=seed), tmp / name / "s")
    assert len(ds.urls) == 1
    return Path(ds.urls[0]).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_cid(data: bytes) -> str:
    return str(BlobCID(hashlib.sha256(data).digest()))


def schema_value() -> dict[str, Any]:
    return rec.schema_record(SAMPLE_TYPE.schema().to_record())


def entry_value(schema_uri: str, storage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "$type": rec.ENTRY_NSID,
        "name": extra.pop("name", "gift"),
        "schemaRef": schema_uri,
        "storage": storage,
        "createdAt": "2026-01-01T00:00:00.000Z",
        **extra,
    }


def http_storage(urls: list[str], digests: list[str] | None = None) -> dict[str, Any]:
    return {
        "$type": rec.STORAGE_HTTP,
        "shards": [
            {"url": u, "checksum": {"algorithm": "sha256", "digest": d}}
            for u, d in zip(urls, digests or ["0" * 64] * len(urls))
        ],
    }


class Publisher:
    """Another account on the same sandbox, writing records as an attacker would: straight XRPC, no
    local validation. Each call logs in, writes, and closes the client, so the publisher is never
    one of "your" accounts in this process."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.account = sandbox.create_account()
        self.did = self.account.did

    def _client(self) -> Atmosphere:
        return Atmosphere.login(
            self.account.handle, self.account.password, pds_url=self.sandbox.pds_url, max_tries=1
        )

    def put(self, *records: tuple[str, dict[str, Any]]) -> list[str]:
        """Create ``(collection, value)`` records; returns their at:// URIs."""
        client = self._client()
        try:
            return [
                client._call(
                    "procedure",
                    "com.atproto.repo.createRecord",
                    body={"repo": self.did, "collection": nsid, "record": value},
                    op="publish",
                )["uri"]
                for nsid, value in records
            ]
        finally:
            client.close()

    def schema(self) -> str:
        return self.put((rec.SCHEMA_NSID, schema_value()))[0]

    def entry(self, storage: dict[str, Any], schema_uri: str | None = None, **extra: Any) -> str:
        schema_uri = schema_uri or self.schema()
        return self.put((rec.ENTRY_NSID, entry_value(schema_uri, storage, **extra)))[0]

    def upload(self, data: bytes) -> dict[str, Any]:
        client = self._client()
        try:
            return client.upload_blob(io.BytesIO(data), content_type="application/x-tar")
        finally:
            client.close()


# ------------------------------------------------------------------------------------------------
# file trees
# ------------------------------------------------------------------------------------------------


def tree(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256 of a file | "dir" | "link -> target"}`` of everything under ``root``
    (symlinks not followed), leaving out the relative paths in ``skip`` and everything below them."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel_dir, d))] = "dir"
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if rel in skip:
                continue
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                out[rel] = f"link -> {os.readlink(p)}"
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out
