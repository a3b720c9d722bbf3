"""The sandbox's relay bridge: what a local network needs between a bare PDS and the AppView.

A bare PDS serves neither ``com.atproto.sync.listReposByCollection`` (the AppView's backfill asks a
relay for it) nor a Jetstream WebSocket (the AppView's live feed). This process serves both, on one
loopback port, from the PDS's own endpoints:

``GET /xrpc/com.atproto.sync.listReposByCollection?collection=NSID[&limit=N][&cursor=DID]``
    The PDS's ``com.atproto.sync.listRepos`` (active repos) filtered by each repo's collections
    (``com.atproto.repo.describeRepo``); ``{"repos": [{"did": ...}], "cursor": ...}``, by DID order.
``GET /subscribe?wantedCollections=NSID|PREFIX.*[&wantedDids=DID][&cursor=TIME_US]`` (WebSocket)
    Jetstream JSON commit events (``{"did", "time_us", "kind": "commit", "commit": {"rev",
    "operation", "collection", "rkey", "record", "cid"}}``) made from the PDS's
    ``com.atproto.sync.subscribeRepos`` CBOR commits (of the collections under ``--collections``,
    default ``science.alt.dataset.``); each record body is fetched with
    ``com.atproto.repo.getRecord``. The last events are kept (bounded) and replayed to a client that
    connects with a cursor (events after it) or without one (every kept event: a client started
    after the bridge misses nothing; the AppView's upserts make a replay harmless).
``GET /xrpc/_health``
    ``{"version": "atdata-lab-bridge"}`` once the bridge listens.

Everything read is bounded (frame, response and message sizes, queue lengths) and checked (DIDs,
NSIDs, record keys); the bridge listens on 127.0.0.1 only and talks only to the PDS it was given.

It runs in the AppView's Python 3.12 venv (websockets, httpx and libipld are there) and imports
nothing from atdata_lab. Usage: ``python bridge.py --pds http://127.0.0.1:PORT --port PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import libipld
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

log = logging.getLogger("atdata-lab-bridge")

HOST = "127.0.0.1"
MAX_FRAME = 8 * 1024 * 1024  # one firehose frame (a commit's CAR slice; records are <= 1 MB)
MAX_RESPONSE = 4 * 1024 * 1024  # one JSON response from the PDS
MAX_CLIENT_MESSAGE = 64 * 1024  # Jetstream clients send at most small option updates
KEPT_EVENTS = 20_000  # events kept for replay
CLIENT_QUEUE = 20_000  # events waiting for one slow client before it is dropped
MAX_REPOS = 100_000  # repos listed from the PDS
_DID = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]{1,2000}$")
_NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9-]{1,63}){2,}$")
_NSID_PREFIX = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9-]{1,63})*\.\*$")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")


class BridgeError(Exception):
    """The PDS answered something the bridge cannot use (too large, not JSON, an error status)."""


async def get_json(http: httpx.AsyncClient, url: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """GET ``url`` and parse its JSON body (at most MAX_RESPONSE bytes); None on 400/404."""
    async with http.stream("GET", url, params=params) as resp:
        if resp.status_code in (400, 404):
            return None
        if resp.status_code != 200:
            raise BridgeError(f"{url} answered HTTP {resp.status_code}")
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE:
                raise BridgeError(f"{url} answered more than {MAX_RESPONSE} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise BridgeError(f"{url} answered JSON that is not an object")
    return data


class Bridge:
    def __init__(self, pds: str, followed: str) -> None:
        self.pds = pds.rstrip("/")
        self.followed = followed  # NSID prefix of the collections turned into events
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False)
        self.kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT_EVENTS)
        self.clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.last_time_us = 0
        self.seq: int | None = None

    # ------------------------------------------------------------------ listReposByCollection
    async def repos_with_collection(self, collection: str) -> list[str]:
        dids: list[str] = []
        cursor: str | None = None
        while len(dids) < MAX_REPOS:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = await get_json(self.http, f"{self.pds}/xrpc/com.atproto.sync.listRepos", params)
            repos = (page or {}).get("repos") or []
            for repo in repos if isinstance(repos, list) else []:
                did = repo.get("did") if isinstance(repo, dict) else None
                if isinstance(did, str) and _DID.match(did) and repo.get("active", True) is not False:
                    dids.append(did)
            cursor = (page or {}).get("cursor")
            if not repos or not isinstance(cursor, str):
                break
        sem = asyncio.Semaphore(8)

        async def has(did: str) -> bool:
            async with sem:
                info = await get_json(
                    self.http, f"{self.pds}/xrpc/com.atproto.repo.describeRepo", {"repo": did}
                )
            cols = (info or {}).get("collections")
            return isinstance(cols, list) and collection in cols

        flags = await asyncio.gather(*(has(d) for d in dids))
        return sorted(d for d, ok in zip(dids, flags, strict=True) if ok)

    async def list_repos_by_collection(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        collection = (query.get("collection") or [""])[0]
        if not _NSID.match(collection):
            return 400, {"error": "InvalidRequest", "message": "collection must be an NSID"}
        try:
            limit = max(1, min(int((query.get("limit") or ["500"])[0]), 2000))
        except ValueError:
            return 400, {"error": "InvalidRequest", "message": "limit must be an integer"}
        after = (query.get("cursor") or [""])[0]
        dids = [d for d in await self.repos_with_collection(collection) if d > after]
        page = dids[:limit]
        body: dict[str, Any] = {"repos": [{"did": d} for d in page]}
        if len(dids) > limit:
            body["cursor"] = page[-1]
        return 200, body

    # ------------------------------------------------------------------ firehose -> events
    async def follow_firehose(self) -> None:
        """Follow the PDS's subscribeRepos for ever (reconnecting from the last seq)."""
        from websockets.asyncio.client import connect

        backoff = 0.5
        ws_base = "ws" + self.pds.removeprefix("http")
        while True:
            url = f"{ws_base}/xrpc/com.atproto.sync.subscribeRepos"
            if self.seq is not None:
                url += f"?cursor={self.seq}"
            try:
                async with connect(url, max_size=MAX_FRAME, open_timeout=10) as ws:
                    backoff = 0.5
                    log.info("following %s", url)
                    async for frame in ws:
                        if isinstance(frame, bytes):
                            await self.on_frame(frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the PDS restarted or dropped us: reconnect
                log.warning("firehose: %s; reconnecting in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def on_frame(self, frame: bytes) -> None:
        try:
            header, body = libipld.decode_dag_cbor_multi(frame)[:2]
        except Exception as exc:
            log.warning("firehose: undecodable frame (%s)", exc)
            return
        if not isinstance(header, dict) or not isinstance(body, dict):
            return
        if isinstance(body.get("seq"), int):
            self.seq = body["seq"]
        if header.get("op") != 1 or header.get("t") != "#commit":
            return
        did, rev, ops = body.get("repo"), body.get("rev"), body.get("ops")
        if not (isinstance(did, str) and _DID.match(did) and isinstance(ops, list)):
            return
        for op in ops[:1000]:
            if isinstance(op, dict):
                event = await self.event_for(did, rev if isinstance(rev, str) else "", op)
                if event is not None:
                    self.publish(event)

    async def event_for(self, did: str, rev: str, op: dict[str, Any]) -> dict[str, Any] | None:
        action, path = op.get("action"), op.get("path")
        if action not in ("create", "update", "delete") or not isinstance(path, str):
            return None
        collection, _, rkey = path.partition("/")
        if not (collection.startswith(self.followed) and _NSID.match(collection) and _RKEY.match(rkey)):
            return None
        commit: dict[str, Any] = {"rev": rev, "operation": action, "collection": collection, "rkey": rkey}
        if action != "delete":
            try:
                got = await get_json(
                    self.http,
                    f"{self.pds}/xrpc/com.atproto.repo.getRecord",
                    {"repo": did, "collection": collection, "rkey": rkey},
                )
            except (httpx.HTTPError, BridgeError, ValueError) as exc:
                log.warning("getRecord %s/%s: %s", did, path, exc)
                return None
            if got is None or not isinstance(got.get("value"), dict):
                return None  # deleted since: its delete event follows
            commit["record"] = got["value"]
            commit["cid"] = got.get("cid")
        self.last_time_us = max(self.last_time_us + 1, time.time_ns() // 1000)
        return {"did": did, "time_us": self.last_time_us, "kind": "commit", "commit": commit}

    def publish(self, event: dict[str, Any]) -> None:
        self.kept.append(event)
        for queue in list(self.clients):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow: drop it (it reconnects with its cursor)
                self.clients.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    # ------------------------------------------------------------------ serving
    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path == "/subscribe":
            return None  # the WebSocket handshake goes on
        query = parse_qs(parts.query, max_num_fields=64)
        if parts.path == "/xrpc/_health":
            return json_response(200, {"version": "atdata-lab-bridge"})
        if parts.path == "/xrpc/com.atproto.sync.listReposByCollection":
            try:
                status, body = await self.list_repos_by_collection(query)
            except (httpx.HTTPError, BridgeError, ValueError) as exc:
                status, body = 502, {"error": "UpstreamFailure", "message": str(exc)[:500]}
            return json_response(status, body)
        return json_response(404, {"error": "NotFound", "message": f"{parts.path} is not served here"})

    async def serve_client(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query, max_num_fields=256)
        wanted = [c for v in query.get("wantedCollections", []) for c in v.split(",") if c]
        exact = {c for c in wanted if _NSID.match(c)}
        prefixes = tuple(c[:-1] for c in wanted if _NSID_PREFIX.match(c))
        dids = {d for d in query.get("wantedDids", []) if _DID.match(d)}
        try:
            cursor = int((query.get("cursor") or ["0"])[0])
        except ValueError:
            cursor = 0

        def wants(event: dict[str, Any]) -> bool:
            col = event["commit"]["collection"]
            if wanted and col not in exact and not col.startswith(prefixes):
                return False
            return not dids or event["did"] in dids

        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        self.clients.add(queue)
        sent = cursor
        try:
            for event in list(self.kept):
                if event["time_us"] > sent and wants(event):
                    await ws.send(json.dumps(event))
                    sent = event["time_us"]
            while True:
                live = await queue.get()
                if live is None:
                    await ws.close(1008, "consumer too slow")
                    return
                if live["time_us"] > sent and wants(live):
                    await ws.send(json.dumps(live))
                    sent = live["time_us"]
        finally:
            self.clients.discard(queue)


def json_response(status: int, body: dict[str, Any]) -> Response:
    data = json.dumps(body).encode()
    # websockets closes the connection after a plain HTTP answer: say so, or clients reuse it and fail
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close")]
    )
    return Response(status, HTTPStatus(status).phrase, headers, data)


async def main(pds: str, port: int, followed: str) -> None:
    bridge = Bridge(pds, followed)
    follower = asyncio.create_task(bridge.follow_firehose())
    async with serve(
        bridge.serve_client,
        HOST,
        port,
        process_request=bridge.process_request,
        max_size=MAX_CLIENT_MESSAGE,
        max_queue=16,
    ) as server:
        log.info("bridge for %s listening on %s:%d", pds, HOST, port)
        try:
            await server.serve_forever()
        finally:
            follower.cancel()
            await bridge.http.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pds", required=True, help="the PDS's base URL (http://127.0.0.1:PORT)")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (127.0.0.1)")
    parser.add_argument(
        "--collections",
        default="science.alt.dataset.",
        help="NSID prefix of the collections whose commits become events (default: %(default)s)",
    )
    args = parser.parse_args()
    if urlsplit(args.pds).hostname not in ("127.0.0.1", "localhost"):
        parser.error("--pds must be a loopback URL (the bridge serves a local sandbox only)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(args.pds, args.port, args.collections))
