"""Search without a real AppView: this index's backend, merging, and hostile AppView answers.

The hostile answers come from a stand-in HTTP server (:class:`StandIn`), by necessity: the real
AppView (atdata-app) never serves malformed entries, oversized or endlessly nested bodies, 5xx or
429 on demand. Everything the real AppView does is tested against it in ``test_search_network.py``.
An AppView that is down needs no stand-in: a closed loopback port.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere, _http
from atdata_lab.atmosphere import records as rec
from atdata_lab.atmosphere._appview import parse_appview
from atdata_lab.errors import (
    AppViewError,
    AppViewRequiredError,
    AppViewUnavailableError,
    AtdataLabError,
    InvalidArgumentError,
)
from atdata_lab.search import (
    AppViewSearchBackend,
    LocalSearchBackend,
    SearchAggregator,
    SearchBackend,
    SearchResult,
    SearchResults,
)

DID_A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
DID_B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
SUM = "ab" * 32


@atdata.packable
class Row:
    text: str
    label: int


def rows(n: int = 4) -> list[Row]:
    return [Row(text=f"row {i}", label=i) for i in range(n)]


def view(did: str = DID_A, name: str = "mnist", **over: Any) -> dict[str, Any]:
    """A well-formed AppView entry view (the shape atdata-app's row_to_entry serves)."""
    v: dict[str, Any] = {
        "uri": f"at://{did}/{rec.ENTRY_NSID}/{rec.make_tid()}",
        "cid": "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "did": did,
        "name": name,
        "schemaRef": f"at://{did}/{rec.SCHEMA_NSID}/{rec.make_tid()}",
        "storage": rec.storage_http([("https://data.example.com/a-000000.tar", SUM)]),
        "createdAt": "2026-12-03T08:27:27.190Z",
        "description": f"{name} digits",
        "tags": ["vision"],
        "license": "MIT",
        "size": {"samples": 10, "bytes": 2048, "shards": 1},
    }
    v.update(over)
    return {k: x for k, x in v.items() if x is not None}


class StandIn:
    """A stand-in AppView: answers each XRPC method with what the test sets (status, body)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any, str]] = {}
        self.hits: list[str] = []
        self.delay = 0.0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                method = self.path.split("?", 1)[0].rsplit(".", 1)[-1]
                stand_in.hits.append(self.path)
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                status, body, ctype = stand_in.answers.get(
                    method, (404, {"error": "MethodNotImplemented"}, "")
                )
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method: str, body: Any, status: int = 200, ctype: str = "") -> None:
        self.answers[method] = (status, body, ctype)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    s = StandIn()
    yield s
    s.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def client_for(appview: str | None, **options: Any) -> Atmosphere:
    # No PDS is needed to search: the client's PDS URL is a closed port.
    options.setdefault("backoff", 0.01)
    return Atmosphere(closed_port_url(), appview=appview, **options)


@pytest.fixture
def index(tmp_path):
    idx = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    idx.write(rows(), name="mnist-local", description="handwritten digits", tags=["vision"], progress=False)
    idx.write(rows(), name="speech", description="spoken words", tags=["audio"], progress=False)
    idx.write(rows(), name="mnist-small", tags=["vision", "small"], progress=False)
    return idx


# --------------------------------------------------------------------------------------------
# this index
# --------------------------------------------------------------------------------------------


def test_atdata_style_search_over_this_index(index):
    # atdata's loop, verbatim: no AppView configured, so the default scope is local
    page = index.search(text="mnist")
    assert sorted(r.name for r in page.items) == ["mnist-local", "mnist-small"]
    assert {r.source for r in page.items} == {"local"} and page.source == "local"
    for r in index.search(text="mnist").items:
        print(r.name, r.source)
    # ... and it is still our page of entries (the index browser's use)
    assert sorted(e.name for e in page) == ["mnist-local", "mnist-small"] and page.total == 2
    assert index.search(None, ["vision", "small"]).items[0].name == "mnist-small"  # tags by position
    assert [r.name for r in index.search(text="spoken").items] == ["speech"]  # description too
    r = index.search(text="speech").items[0]
    assert r.uri == index.get_entry_by_name("speech").cid and r.num_samples == 4 and r.storage == "local"
    ref = index.get_entry_by_name("speech").schema_ref
    assert [r.name for r in index.search(schema_ref=ref, sort="name", descending=False).items] == [
        "mnist-local",
        "mnist-small",
        "speech",
    ]
    assert index.search(repo=DID_A).items == [] and len(index.search(repo="local").items) == 3
    with pytest.raises(InvalidArgumentError):
        index.search(scope="everywhere")
    with pytest.raises(InvalidArgumentError):
        index.search(schema="A", schema_ref="B")


def test_local_backend_pages_with_a_cursor(index):
    backend = LocalSearchBackend(index)
    assert isinstance(backend, SearchBackend) and backend.health_check() and backend.name == "local"
    first = backend.search(limit=2)
    assert len(first.items) == 2 and first.cursor == "2" and first.total_hint == 3
    rest = backend.search(limit=2, cursor=first.cursor)
    assert len(rest.items) == 1 and rest.cursor is None
    assert {r.name for r in first.items + rest.items} == {"mnist-local", "mnist-small", "speech"}
    with pytest.raises(InvalidArgumentError):
        backend.search(cursor="-1")


def test_network_scope_needs_an_appview(index):
    with pytest.raises(AppViewRequiredError, match="ATDATA_APPVIEW_URL") as e:
        index.search("mnist", scope="network")
    assert isinstance(e.value, ValueError) and isinstance(e.value, AtdataLabError)
    page = index.search("mnist", scope="all")  # asked for both: local results and a warning
    assert len(page.items) == 2 and "no AppView is configured" in page.warnings[0]


# --------------------------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------------------------


class Fixed:
    def __init__(self, name: str, items: list[SearchResult], healthy: bool = True, fails: bool = False):
        self._name, self._items, self._healthy, self._fails = name, items, healthy, fails

    @property
    def name(self) -> str:
        return self._name

    def search(
        self, text=None, tags=None, schema_ref=None, repo=None, limit=50, cursor=None
    ) -> SearchResults:
        if self._fails:
            raise RuntimeError("boom")
        return SearchResults(items=list(self._items), source=self._name)

    def health_check(self) -> bool:
        return self._healthy


def test_aggregator_drops_repeats_but_keeps_each_publishers_dataset():
    uri_a = f"at://{DID_A}/{rec.ENTRY_NSID}/{rec.make_tid()}"
    uri_b = f"at://{DID_B}/{rec.ENTRY_NSID}/{rec.make_tid()}"
    local = SearchResult(uri="bafylocal", name="mnist", source="local", published_uri=uri_a)
    net_a = SearchResult(uri=uri_a, name="mnist", source="atmosphere", did=DID_A)
    net_b = SearchResult(uri=uri_b, name="mnist", source="atmosphere", did=DID_B)
    scored = SearchResult(uri="x", name="zebra", source="custom", score=2.0)
    got = SearchAggregator(
        [
            Fixed("local", [local]),
            Fixed("atmosphere", [net_a, net_b, net_a]),
            Fixed("custom", [scored]),
            Fixed("down", [net_b], healthy=False),
            Fixed("broken", [net_b], fails=True),
        ]
    ).search(text="mnist")
    # the local entry published as uri_a is uri_a; another publisher's "mnist" is another dataset
    assert [(r.name, r.source) for r in got.items] == [
        ("zebra", "custom"),
        ("mnist", "local"),
        ("mnist", "atmosphere"),
    ]
    assert got.items[2].did == DID_B and got.total_hint == 3 and got.source == "aggregated"
    assert any("down: failed its health check" in w for w in got.warnings)
    assert any("broken: RuntimeError: boom" in w for w in got.warnings)
    assert len(SearchAggregator([Fixed("atmosphere", [net_a, net_b, scored])]).search(limit=2).items) == 2


# --------------------------------------------------------------------------------------------
# the AppView client: configuration, transport, errors
# --------------------------------------------------------------------------------------------


def test_appview_from_argument_or_environment(monkeypatch):
    assert parse_appview("did:web:datasets.example.com") == (
        "https://datasets.example.com",
        "did:web:datasets.example.com",
    )
    assert parse_appview("http://127.0.0.1:8000/") == ("http://127.0.0.1:8000", "did:web:127.0.0.1%3A8000")
    for bad in ("datasets.example.com", "ftp://x", "http://user:pw@host", "http://h/?q=1", ""):
        with pytest.raises(InvalidArgumentError):
            parse_appview(bad)
    assert not client_for(None).has_appview
    monkeypatch.setenv("ATDATA_APPVIEW_URL", "http://127.0.0.1:9")
    assert client_for(None).appview_url == "http://127.0.0.1:9"
    assert not client_for("").has_appview  # "" means none, whatever the environment says
    monkeypatch.delenv("ATDATA_APPVIEW_URL")
    monkeypatch.setenv("ATDATA_APPVIEW", "did:web:appview.example")  # atdata's variable
    assert client_for(None).appview_did == "did:web:appview.example"
    with pytest.raises(AppViewRequiredError):
        client_for("").xrpc_query("science.alt.dataset.describeService")


def test_unreachable_appview_is_a_connection_error_naming_url_and_fix():
    url = closed_port_url()
    atm = client_for(url)
    with pytest.raises(AppViewUnavailableError) as e:
        atm.xrpc_query("science.alt.dataset.describeService")
    assert isinstance(e.value, ConnectionError) and e.value.url == url
    assert (
        url in str(e.value)
        and "sandbox start --appview" in str(e.value)
        and "ATDATA_APPVIEW_URL" in str(e.value)
    )
    assert not AppViewSearchBackend(atm).health_check()


def test_appview_failures_map_to_appview_errors(stand_in, monkeypatch):
    atm = client_for(stand_in.url, max_tries=2)
    q = "science.alt.dataset.describeService"
    stand_in.answer("describeService", {"error": "InternalServerError"}, status=500)
    with pytest.raises(AppViewUnavailableError, match="HTTP 500"):
        atm.xrpc_query(q)
    assert len(stand_in.hits) == 2  # retried once (a query is safe to retry), then given up
    stand_in.answer("describeService", {"error": "RateLimitExceeded"}, status=429)
    with pytest.raises(AppViewUnavailableError, match="HTTP 429"):
        atm.xrpc_query(q)
    stand_in.answer("describeService", {"error": "InvalidRequest", "message": "bad"}, status=400)
    with pytest.raises(AppViewError, match="HTTP 400") as e:
        atm.xrpc_query(q)
    assert not isinstance(e.value, AppViewUnavailableError) and e.value.status == 400
    stand_in.answer("describeService", b"<html>hello</html>", ctype="text/html")
    with pytest.raises(AppViewError, match="not a JSON object"):
        atm.xrpc_query(q)
    stand_in.answer("describeService", b"{not json", ctype="application/json")
    with pytest.raises(AppViewError, match="not JSON"):
        atm.xrpc_query(q)
    stand_in.answer("describeService", ["a", "list"])
    with pytest.raises(AppViewError, match="list, not a JSON object"):
        atm.xrpc_query(q)
    stand_in.answer("describeService", b"[" * 500 + b"]" * 500)
    with pytest.raises(AppViewError, match="nested 500 levels"):
        atm.xrpc_query(q)
    monkeypatch.setattr(_http, "MAX_RESPONSE_BYTES", 10_000)
    stand_in.answer("describeService", {"pad": "x" * 50_000})
    with pytest.raises(AppViewError, match="the limit"):
        atm.xrpc_query(q)
    with pytest.raises(InvalidArgumentError):
        atm.xrpc_query("not an nsid")
    with pytest.raises(InvalidArgumentError):
        atm.xrpc_query(q, {"x": {"nested": 1}})


def test_a_slow_appview_times_out_as_unavailable(stand_in):
    stand_in.delay = 1.5
    stand_in.answer("describeService", {})
    with pytest.raises(AppViewUnavailableError, match="no answer in time"):
        client_for(stand_in.url, timeout=0.3, max_tries=1).xrpc_query("science.alt.dataset.describeService")


# --------------------------------------------------------------------------------------------
# hostile search answers
# --------------------------------------------------------------------------------------------


def test_malformed_entries_are_dropped_with_a_warning_never_raised(stand_in, caplog):
    good, good_b = view(), view(DID_B, "cifar", tags=["vision", "color"])
    uri = good["uri"]
    hostile = [
        "not an object",
        view(uri=None),
        view(uri="https://evil.example/entry"),
        view(uri=f"at://{DID_A}/{rec.SCHEMA_NSID}/{rec.make_tid()}"),  # not an entry
        view(uri=f"at://alice.test/{rec.ENTRY_NSID}/{rec.make_tid()}"),  # a handle, not a DID
        {**view(), "did": DID_B},  # credits DID_A's record to DID_B
        view(name="n" * 5000),
        view(name=""),
        view(name="line\nbreak"),
        view(tags=[f"t{i}" for i in range(31)]),
        view(tags="vision"),
        view(description="d" * 20_000),
        view(size={"samples": 1.5}),  # a float: not in the data model
        view(size={"samples": -3}),
        view(storage={"$type": "science.alt.dataset.storageNowhere"}),
        view(storage=None),
        view(schemaRef="https://schemas.example/s.json"),
        view(schemaRef=f"at://{DID_A}/{rec.ENTRY_NSID}/{rec.make_tid()}"),  # not a schema
        view(cid="not a cid"),
        view(createdAt="yesterday"),
        dict(good),  # a repeat of the first
    ]
    stand_in.answer("searchDatasets", {"entries": [good, *hostile, good_b], "cursor": "c" * 5000})
    with caplog.at_level(logging.WARNING, logger="atdata_lab.search"):
        page = AppViewSearchBackend(client_for(stand_in.url), resolve_handles=False).search(text="mnist")
    assert [r.uri for r in page.items] == [uri, good_b["uri"]] and page.cursor is None  # the cursor was junk
    r = page.items[0]
    assert (r.name, r.did, r.source, r.license, r.num_samples, r.size_bytes, r.num_shards, r.storage) == (
        "mnist",
        DID_A,
        "atmosphere",
        "MIT",
        10,
        2048,
        1,
        "http",
    )
    assert r.record["value"]["$type"] == rec.ENTRY_NSID and r.record["uri"] == uri
    dropped = [m for m in caplog.messages if m.startswith("dropped a malformed dataset entry")]
    assert len(dropped) == len(hostile) - 1  # the repeat is not malformed, just dropped
    assert all(len(m) < 600 for m in caplog.messages)  # no unbounded untrusted text in the log


def test_hostile_search_answers(stand_in):
    backend = AppViewSearchBackend(client_for(stand_in.url), resolve_handles=False)
    stand_in.answer("searchDatasets", {"entries": {"not": "a list"}})
    with pytest.raises(AppViewError, match="'entries' list"):
        backend.search(text="x")
    stand_in.answer("searchDatasets", {"entries": [view(name=f"d{i}") for i in range(60)]})
    assert len(backend.search(text="d", limit=5).items) == 5  # more than asked: cut to the limit
    with pytest.raises(InvalidArgumentError):
        backend.search(text="x", limit=0)
    with pytest.raises(InvalidArgumentError):
        backend.search(text="x", tags="vision")


def test_search_without_text_lists_and_filters(stand_in):
    a, b = view(name="a", tags=["x"]), view(DID_B, "b", tags=["x", "y"])
    stand_in.answer("listEntries", {"entries": [a, b, view(name="c")], "cursor": None})
    backend = AppViewSearchBackend(client_for(stand_in.url), resolve_handles=False)
    assert [r.name for r in backend.search(tags=["x"]).items] == ["a", "b"]
    assert [r.name for r in backend.search(tags=["x", "y"]).items] == ["b"]
    assert [r.name for r in backend.search(schema_ref=a["schemaRef"]).items] == ["a"]
    assert "searchDatasets" not in " ".join(stand_in.hits)


def test_index_search_scopes_with_a_stand_in_appview(index, stand_in):
    published = f"at://{DID_A}/{rec.ENTRY_NSID}/{rec.make_tid()}"
    index.provider.update_entry("mnist-small", published_uri=published)
    stand_in.answer(
        "searchDatasets",
        {"entries": [view(name="mnist-small", uri=published), view(DID_B, "mnist-local")]},
    )
    index.atmosphere = client_for(stand_in.url)
    page = index.search(text="mnist")  # an AppView is configured: local and network, as atdata
    assert page.source == "aggregated" and sorted(e.name for e in page) == ["mnist-local", "mnist-small"]
    assert [(r.name, r.source) for r in page.items] == [
        ("mnist-local", "local"),
        ("mnist-local", "atmosphere"),  # another publisher's dataset of the same name
        ("mnist-small", "local"),  # ... while the network copy of our own published one is merged
    ]
    assert index.search(text="mnist", include_atmosphere=False).source == "local"
    net = index.search(text="mnist", scope="network")
    assert list(net) == [] and [r.source for r in net.items] == ["atmosphere", "atmosphere"]
    assert index.search(text="mnist", scope="local").items[0].source == "local"
    stand_in.close()  # the AppView goes away
    page = index.search(text="mnist")
    assert {r.source for r in page.items} == {"local"} and "is unavailable" in page.warnings[0]
    with pytest.raises(AppViewUnavailableError, match=stand_in.url):
        index.search(text="mnist", scope="network")


def test_index_without_atmosphere_uses_the_environments_appview(index, stand_in, monkeypatch):
    stand_in.answer("searchDatasets", {"entries": [view(DID_B, "elsewhere")]})
    monkeypatch.setenv("ATDATA_APPVIEW_URL", stand_in.url)
    monkeypatch.setenv("ATDATA_PDS_URL", closed_port_url())
    names = [r.name for r in index.search(text="elsewhere", scope="network").items]
    assert names == ["elsewhere"]
    client = index._network_client()
    assert client is index._network_client() and client.appview_url == stand_in.url  # kept
