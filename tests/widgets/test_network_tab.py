"""The index browser's Network tab and the AppView note of the promotion preview.

The views are tested on constructed search results (what an AppView returns is untrusted: hostile
names, oversized cells, odd types); the library calls and the widget run against the real sandbox
PDS, and the network search against the real sandbox AppView."""

from __future__ import annotations

import html
import json
import os
import socket
import time
import uuid

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import atdata_lab as atdata  # noqa: E402
from atdata_lab import views as S  # noqa: E402
from atdata_lab.promotion.network import AppViewCheck, appview_knows, network_records  # noqa: E402
from atdata_lab.search import SearchResult  # noqa: E402


@atdata.packable
class Frame:
    image: NDArray
    label: int


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Frame(image=rng.integers(0, 255, (8, 8), dtype=np.uint8), label=i) for i in range(n)]


DID = "did:plc:abcdefghijklmnopqrstuvwx"
URI = f"at://{DID}/science.alt.dataset.entry/3kabcdefghijk"
SCHEMA = f"at://{DID}/science.alt.dataset.schema/3kaaaaaaaaaaa"


def appview_entry(**over):
    e = {
        "uri": URI,
        "cid": "bafyrei",
        "did": DID,
        "name": "mnist-train",
        "schemaRef": SCHEMA,
        "storage": {"$type": "science.alt.dataset.storageBlobs", "blobs": []},
        "createdAt": "2026-12-03T08:27:27.190Z",
        "description": "digits",
        "tags": ["img", "digits"],
        "license": "MIT",
        "size": {"samples": 60000, "bytes": 47_000_000, "shards": 6},
    }
    e.update(over)
    return e


def result(**over):
    rec = appview_entry(**over)
    return SearchResult(
        uri=rec["uri"],
        name=rec["name"],
        description=rec.get("description"),
        tags=rec.get("tags", []),
        schema_ref=rec.get("schemaRef"),
        source="atmosphere",
        record=rec,
    )


# --------------------------------------------------------------------------------------- views
def test_network_row_shows_the_publisher_and_counts():
    r = result()
    row = S.network_row(r)
    assert row == {
        "uri": URI,
        "name": "mnist-train",
        "publisher": DID,
        "did": DID,
        "schema": "3kaaaaaaaaaaa",
        "samples": "60,000",
        "size": "44.8 MB",
        "license": "MIT",
        "created": "2026-12-03 08:27",
        "source": "atmosphere",
    }
    assert S.network_row(r, {DID: "alice.test"})["publisher"] == "@alice.test"
    assert [c.key for c in S.NETWORK_COLUMNS] == [
        "name",
        "publisher",
        "schema",
        "samples",
        "size",
        "license",
        "created",
    ]


def test_network_rows_take_untrusted_values_as_plain_bounded_text():
    hostile = result(
        name="<img src=x onerror=alert(1)>\x1b[31m" + "x" * 500,
        license=["not", "a", "string"],
        size={"samples": -5, "bytes": True},
        createdAt=12,
        did="not-a-did",
    )
    row = S.network_row(hostile)
    assert len(row["name"]) <= S.network.CELL_LIMIT and row["name"].endswith("…")
    assert "\x1b" not in row["name"] and "\\x1b" in row["name"]
    assert row["license"] == "" and row["samples"] == "?" and row["size"] == "?" and row["created"] == ""
    assert row["publisher"] == DID  # a record's "did" that is no DID: the URI's authority counts
    # no URI, or the same URI twice (an aggregated search): left out, shown once
    rows = S.network_rows([result(), result(), SearchResult(uri="local-cid", name="x")])
    assert [r["uri"] for r in rows] == [URI]


def test_detail_card_escapes_everything_and_offers_the_load_line():
    r = result(name='evil"</pre><script>alert(1)</script>', description="<b>bold</b>", tags=["<i>t</i>"])
    out = S.network_detail_html(r, None, "alice.test")
    assert "<script>" not in out and "<b>bold" not in out and "<i>t" not in out
    assert "&lt;script&gt;" in out and "Reading its records" in out
    line = html.unescape(out.split("atdata-network-load-line'>")[1].split("</pre>")[0])
    assert line == 'load_dataset("@alice.test/evil\\"</pre><script>alert(1)</script>")'
    assert S.load_line(DID, "mnist") == f'load_dataset("@{DID}/mnist")'
    assert S.load_line("@bob.test", "a") == 'load_dataset("@bob.test/a")'
    failed = S.network_detail_html(r, None, None, error="RecordNotFoundError: <gone>")
    assert "Could not read its records: RecordNotFoundError: &lt;gone&gt;" in failed
    assert f"load_dataset(&quot;@{DID}/" in failed  # no handle: the DID


def test_detail_card_shows_the_records():
    from atdata_lab.promotion.network import NetworkRecords

    recs = NetworkRecords(
        uri=URI,
        did=DID,
        entry={"uri": URI, "cid": "c1", "value": {"name": "mnist-train", "schemaRef": SCHEMA}},
        schema=None,
        schema_error="RecordNotFoundError: gone",
        labels=[{"uri": "at://x/science.alt.dataset.label/1", "value": {"name": "<v1>", "version": "1.0"}}],
    )
    out = S.network_detail_html(result(), recs, None)
    assert "entry · " + URI in out and "&quot;schemaRef&quot;" in out
    assert "RecordNotFoundError: gone" in out and "&lt;v1&gt;" in out and "<v1>" not in out


def test_diff_options_put_the_same_name_first():
    local = [
        {"$ref": "atdata://local/schema/Other@1.0.0", "name": "Other", "version": "1.0.0"},
        {"$ref": "atdata://local/schema/Frame@1.0.0", "name": "Frame", "version": "1.0.0"},
        {"$ref": "atdata://local/schema/Frame@1.10.0", "name": "Frame", "version": "1.10.0"},
    ]
    assert [ref for _, ref in S.network_diff_options(local, "Frame")] == [
        "atdata://local/schema/Frame@1.10.0",
        "atdata://local/schema/Frame@1.0.0",
        "atdata://local/schema/Other@1.0.0",
    ]
    assert S.network_diff_options([], "Frame") == []


def test_appview_check_lines():
    known = AppViewCheck("known", "mnist", DID, (URI,), "http://127.0.0.1:1")
    out = S.appview_check_html(known)
    assert "data-state='known'" in out and "atdata-badge-warn" in out and URI in out
    assert "already knows a dataset named 'mnist'" in known.describe()
    assert "knows no dataset named" in AppViewCheck("unknown", "mnist", DID, appview="u").describe()
    assert "ATDATA_APPVIEW_URL" in AppViewCheck("not configured", "mnist", DID).describe()
    down = AppViewCheck("unavailable", "<m>", DID, appview="u", detail="AppViewUnavailableError: <refused>")
    assert "&lt;refused&gt;" in S.appview_check_html(down) and "<refused>" not in S.appview_check_html(down)
    assert S.appview_check_html(None) == ""


def test_network_status_text():
    assert S.network_status_text(1) == "1 dataset"
    assert S.network_status_text(3, query="mn", source="atmosphere", polling=10) == (
        "3 datasets matching 'mn' from atmosphere · checking for new records every 10 s"
    )
    warned = S.network_status_text(
        1, source="pds", warnings=["the AppView is unavailable\x1b[2J: read the PDS"]
    )
    assert warned == "1 dataset from pds · the AppView is unavailable\\x1b[2J: read the PDS"


# --------------------------------------------------------------------------------------- the library
def test_appview_knows_needs_a_publisher():
    with pytest.raises(ValueError, match="needs a publisher"):
        appview_knows(None, "x")
    assert appview_knows(None, "x", did=DID).state == "not configured"


@pytest.mark.sandbox
def test_plan_and_wizard_say_when_no_appview_is_configured(pds_account, tmp_path, monkeypatch):
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.widgets import PromotionWizard

    monkeypatch.delenv("ATDATA_APPVIEW_URL", raising=False)
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "d"), atmosphere=client
    )
    index.write(frames(4), name="frames-a", progress=False)
    plan = index.plan_promotion("frames-a")
    assert plan.appview is not None and plan.appview.state == "not configured"
    assert "AppView: no AppView is configured" in plan.summary()
    assert plan.to_dict()["appview"] == {"state": "not configured", "uris": [], "appview": ""}
    assert "atdata-plan-appview-not-configured" in plan._repr_html_()

    w = PromotionWizard(index, entry="frames-a")
    w.wait()  # what is published is read in the background first
    w.make_plan()
    assert "AppView: not configured" in w._decision.value, w._decision.value


@pytest.mark.sandbox
def test_network_records_read_entry_schema_and_labels(pds_account, tmp_path):
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "d"), atmosphere=client
    )
    index.write(frames(4), name="frames-b", progress=False)
    uri = index.promote_entry("frames-b", license="MIT", copy_to="blobs", progress=False)

    reader = atdata.Index(
        path=tmp_path / "r.db", data_store=atdata.LocalDiskStore(tmp_path / "rd")
    )  # anonymous
    recs = network_records(reader, uri)
    assert recs.did == client.did and recs.name == "frames-b" and recs.entry["uri"] == uri
    assert recs.schema is not None and recs.schema["value"]["name"] == "Frame" and not recs.schema_error
    assert [lab["value"]["datasetUri"] for lab in recs.labels] == [uri]
    with pytest.raises(ValueError, match="is not an at://"):
        network_records(reader, recs.schema["uri"])


# --------------------------------------------------------------------------------------- the real network
# The session sandbox with its AppView network (tests/plugins/sandbox.py: appview_sandbox).
@pytest.fixture
def network(appview_sandbox):
    return appview_sandbox


def login(network, account, **options):
    from atdata_lab.atmosphere import Atmosphere

    return Atmosphere.login(
        account.handle, account.password, pds_url=network.env(account)["ATDATA_PDS_URL"], **options
    )


def publish(network, account, tmp_path, name, *, tags, n=4, seed=0):
    """``account`` publishes ``n`` frames as ``name`` (shards as PDS blobs, so anyone can read them)."""
    index = atdata.Index(
        path=tmp_path / f"{account.handle}.db",
        data_store=atdata.LocalDiskStore(tmp_path / account.handle),
        atmosphere=login(network, account),
    )
    index.write(
        frames(n, seed), name=name, description=f"frames of {account.handle}", tags=tags, progress=False
    )
    return index.promote_entry(name, license="MIT", copy_to="blobs", progress=False)


def wait_for(fn, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.5)


@pytest.fixture
def reader(network, tmp_path, monkeypatch):
    """A third user, logged in, with the sandbox's ATDATA_* (AppView URL, trusted hosts) set."""
    carol = network.create_account()
    for k, v in network.env(carol).items():
        monkeypatch.setenv(k, v)
    index = atdata.Index(
        path=tmp_path / "reader.db",
        data_store=atdata.LocalDiskStore(tmp_path / "rd"),
        atmosphere=login(network, carol),
    )
    index.write(frames(3), name="my-frames", progress=False)  # a local Frame schema to diff against
    return index


def esc_text(text):
    return html.escape(text)


def network_uris(index, text):
    return {r.uri for r in index.search(text, scope="network").items}


@pytest.mark.sandbox
@pytest.mark.appview
def test_network_tab_finds_two_publishers_and_opens_one(network, reader, tmp_path):
    from atdata_lab.widgets import IndexBrowser, SampleInspector, SchemaDiffViewer

    tag = f"nt{uuid.uuid4().hex[:8]}"
    alice, bob = network.create_account(), network.create_account()
    a_uri = publish(network, alice, tmp_path, "frames-alice", tags=[tag])
    b_uri = publish(network, bob, tmp_path, "frames-bob", tags=[tag], n=6, seed=1)
    wait_for(lambda: {a_uri, b_uri} <= network_uris(reader, tag), "the AppView indexing both datasets")

    b = IndexBrowser(reader, poll=None)
    assert b.tabs is not None and b.tabs.get_title(2) == "Network" and not b.network.searched
    b.tabs.selected_index = 2  # the front end opening the tab: the newest datasets of everyone
    assert not b.errors.visible, b.errors.message
    assert b.network.searched and {a_uri, b_uri} <= {r["uri"] for r in b.network.rows}
    rows = {r["uri"]: r for r in b.search_network(tag)}
    assert set(rows) == {a_uri, b_uri} and b.tabs.selected_index == 2 and not b.errors.visible
    assert rows[a_uri]["publisher"] == f"@{alice.handle}" and rows[a_uri]["did"] == alice.did
    assert rows[b_uri]["publisher"] == f"@{bob.handle}" and rows[b_uri]["samples"] == "6"
    assert rows[a_uri]["license"] == "MIT" and rows[a_uri]["schema"] and rows[a_uri]["created"]
    assert "2 datasets matching" in b.network.status.value and not b.network.polling

    # a row click from the front end: its records, read from the publisher's PDS
    b.network.table.selected = a_uri
    recs = b.network.records
    assert not b.errors.visible, b.errors.message
    assert recs.uri == a_uri and recs.name == "frames-alice" and recs.did == alice.did
    assert recs.schema["value"]["name"] == "Frame" and [lab["value"]["name"] for lab in recs.labels] == [
        "frames-alice"
    ]
    assert b.network.load_line == f'load_dataset("@{alice.handle}/frames-alice")'
    assert b.network.copy_button.text == b.network.load_line  # the Copy button copies exactly that
    detail = html.unescape(b.network.detail_html.value)
    assert (
        b.network.load_line in detail
        and "entry · " + a_uri in detail
        and b.network.detail.layout.display == "flex"
    )

    # its samples, streamed from the publisher's PDS blobs
    inspector = b.inspect_network()
    assert isinstance(inspector, SampleInspector) and inspector.n == 4 and inspector.sample.label == 0
    assert b.network.action_widget is inspector
    # its schema against the local one (same fields: identical)
    assert b.network.diff_against.value.startswith("atdata://local/schema/Frame@")
    viewer = b.diff_network()
    assert isinstance(viewer, SchemaDiffViewer) and b.network.action_widget is viewer
    b.network.close_action()
    assert b.network.action_widget is None

    # filters: tags and a schema (each publisher has its own schema record)
    assert {r["uri"] for r in b.search_network("", tags=[tag])} == {a_uri, b_uri}
    assert [r["uri"] for r in b.search_network(tag, schema=recs.schema_ref)] == [a_uri]
    assert [r["uri"] for r in b.search_network(tag, publisher=bob.did)] == [b_uri]
    assert b.network.publisher_box.value == bob.did and b.network.source == "atmosphere"
    b.search_network(tag, schema=recs.schema_ref)
    assert b.network.selected is not None and b.network.table.selected == a_uri  # the selection stays
    static = b._repr_mimebundle_()["text/html"]  # nbviewer/GitHub: the Network rows too
    assert "<b>Network</b>" in static and "frames-alice" in static and f"@{alice.handle}" in static
    b.close()


@pytest.mark.sandbox
@pytest.mark.appview
def test_new_records_appear_by_polling_until_closed(network, reader, tmp_path):
    from atdata_lab.widgets import IndexBrowser

    tag = f"np{uuid.uuid4().hex[:8]}"
    alice = network.create_account()
    first = publish(network, alice, tmp_path, "poll-one", tags=[tag])
    wait_for(lambda: first in network_uris(reader, tag), "the AppView indexing the first dataset")
    b = IndexBrowser(reader, poll=0.1)  # bounded: polls every 2 s at the most
    assert b.network.poll == 2.0
    assert [r["uri"] for r in b.search_network(tag)] == [first] and b.network.polling
    second = publish(network, alice, tmp_path, "poll-two", tags=[tag], seed=2)
    wait_for(
        lambda: second in [r["uri"] for r in b.network.table.rows], "the poll showing the new record", 90
    )
    assert b.network.poll_changes >= 1 and b.network.polls >= 1
    # hidden, the tab does not poll; shown again, it checks at once
    b.tabs.selected_index = 0
    third = publish(network, alice, tmp_path, "poll-three", tags=[tag], seed=3)
    wait_for(lambda: third in network_uris(reader, tag), "the AppView indexing the third dataset")
    assert b.network.poll_once() is False and third not in [r["uri"] for r in b.network.table.rows]
    b.tabs.selected_index = 2
    assert third in [r["uri"] for r in b.network.table.rows]
    b.close()
    assert not b.network.polling
    polls = b.network.polls
    time.sleep(2.5)
    assert b.network.polls == polls  # stopped with the widget


@pytest.mark.sandbox
@pytest.mark.appview
def test_the_plan_says_whether_the_appview_knows_the_name(network, reader, tmp_path):
    from atdata_lab.widgets import PromotionWizard

    alice = network.create_account()
    uri = publish(network, alice, tmp_path, "known-frames", tags=["k"])
    index = atdata.Index(
        path=tmp_path / f"{alice.handle}.db",
        data_store=atdata.LocalDiskStore(tmp_path / alice.handle),
        atmosphere=login(network, alice),
    )
    wait_for(lambda: appview_knows(index, "known-frames").known, "the AppView indexing the dataset")
    index.write(frames(5, seed=3), name="other-frames", progress=False)

    plan = index.plan_promotion("other-frames", name="known-frames")
    assert plan.appview.state == "known" and plan.appview.uris == (uri,)
    assert plan.appview.appview == network.appview_url and "already knows a dataset named" in plan.summary()
    assert index.plan_promotion("other-frames").appview.state == "unknown"  # its own name: not yet

    w = PromotionWizard(index, entry="other-frames")
    w.wait()
    assert w.set_description(name="known-frames") == ""
    w.make_plan()
    if w.plan is None:  # the form's empty fields would clear the published license: on purpose here
        w.confirm_downgrades()
    plan = w.plan
    assert plan.appview.state == "known"  # the plan Publish executes, and the preview shows it
    assert "AppView: known" in w._decision.value and uri in w._decision.value

    # an AppView that does not answer: the preview says so, the plan is still made
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    index.atmosphere = login(network, alice, appview=dead)
    plan = index.plan_promotion("other-frames", name="known-frames")
    assert plan.appview.state == "unavailable" and plan.appview.detail, plan.appview
    assert "could not be asked" in plan.summary()


@pytest.mark.sandbox
@pytest.mark.appview
def test_appview_down_mid_session_polls_on_and_nothing_secret_in_widget_state(network, reader, tmp_path):
    import ipywidgets

    from atdata_lab.errors import AppViewUnavailableError
    from atdata_lab.widgets import IndexBrowser

    tag = f"nd{uuid.uuid4().hex[:8]}"
    alice = network.create_account()
    uri = publish(network, alice, tmp_path, "down-frames", tags=[tag])
    wait_for(lambda: uri in network_uris(reader, tag), "the AppView indexing the dataset")
    b = IndexBrowser(reader, poll=None)
    assert [r["uri"] for r in b.search_network(tag)] == [uri]
    b.select_network(uri)

    network.stop_appview()
    try:
        # a poll says so in the status line and keeps what is shown; the next poll tries again
        assert b.network.poll_once() is False
        assert "checking for new records failed (AppViewUnavailableError" in b.network.status.value
        assert [r["uri"] for r in b.network.table.rows] == [uri] and not b.errors.visible
        # a search the user asked for: the error panel, with the AppView's URL
        with pytest.raises(AppViewUnavailableError):
            b.search_network(tag)
        assert b.errors.visible and "AppViewUnavailableError" in b.errors.message
        # one publisher's datasets: read from that publisher's PDS instead, and the status says so
        assert [r["uri"] for r in b.search_network("", publisher=alice.did)] == [uri]
        assert b.network.source != "atmosphere" and b.network.warnings, (b.network.source, b.network.warnings)
        assert esc_text(b.network.warnings[0]) in b.network.status.value and not b.errors.visible
        # the selected dataset still opens: its records come from the publisher's PDS
        assert b.select_network(uri).name == "down-frames"
        # the promotion preview says the AppView could not be asked, and plans anyway
        assert appview_knows(reader, "down-frames", did=alice.did).state == "unavailable"
    finally:
        network.start_appview()

    # nothing secret in any widget's state (the reader's app password, the session tokens)
    session = reader.atmosphere._sdk._session
    secrets = [os.environ["ATDATA_PASSWORD"], session.access_jwt, session.refresh_jwt]
    assert all(len(s) > 8 for s in secrets)
    for model_id, widget in list(ipywidgets.widgets.widget._instances.items()):
        state = json.dumps(widget.get_state(), default=repr)
        for secret in secrets:
            assert secret not in state, (model_id, type(widget).__name__)
    assert not any(s in json.dumps(b._repr_mimebundle_(), default=repr) for s in secrets)
    b.close()


@pytest.mark.sandbox
@pytest.mark.appview
def test_anyone_may_search_the_network_without_an_account(network, reader, tmp_path):
    """No login: ATDATA_APPVIEW_URL (set by the reader fixture) is enough for the Network tab."""
    from atdata_lab.widgets import IndexBrowser, SampleInspector

    tag = f"na{uuid.uuid4().hex[:8]}"
    alice = network.create_account()
    uri = publish(network, alice, tmp_path, "open-frames", tags=[tag])
    wait_for(lambda: uri in network_uris(reader, tag), "the AppView indexing the dataset")
    anonymous = atdata.Index(path=tmp_path / "anon.db", data_store=atdata.LocalDiskStore(tmp_path / "anon"))
    assert anonymous.atmosphere is None
    b = IndexBrowser(anonymous, poll=None)
    assert (
        b.tab_names == ["local", "network"] and b.tabs.get_title(1) == "Network" and b.published_tab is None
    )
    with pytest.raises(ValueError, match="the Published tab needs an index with an atmosphere"):
        b.show_tab("published")
    assert [r["uri"] for r in b.search_network(tag)] == [uri] and b.tabs.selected_index == 1
    assert b.select_network(uri).name == "open-frames" and not b.errors.visible
    assert isinstance(b.inspect_network(), SampleInspector) and b.network.action_widget.n == 4
    b.close()
