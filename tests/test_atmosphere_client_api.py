"""atdata 0.7's ``Atmosphere`` client methods on ours, against the REAL sandbox PDS and AppView.

Both call forms work on one client: atdata's (``get_record(uri)``, ``delete_record(uri,
swap_commit=)``, ``list_records(..., cursor=)`` -> ``(values, cursor)``, ``upload_blob(data,
mime_type)``) and ours (``get_record(collection, rkey, repo=)`` -> ``{"uri", "cid", "value"}``);
mixing them is refused before any request. The AppView methods (``search_datasets``,
``get_entries``, ``get_entry_stats``, ``search_lenses``) ask the real atdata-app of the sandbox
network; a hostile entry is a real record on the real PDS (written raw, past our client's checks,
as another publisher could) that the real AppView indexes and serves: our client drops it.
"""

from __future__ import annotations

import logging
import time
import uuid

import httpx
import pytest

from atdata_lab.atmosphere import Atmosphere, AtUri, LensPublisher, SchemaPublisher
from atdata_lab.atmosphere import records as R
from atdata_lab.atmosphere.client import RecordValue
from atdata_lab.errors import (
    AppViewRequiredError,
    AppViewUnavailableError,
    InvalidArgumentError,
    RecordConflictError,
    RecordNotFoundError,
)
from atdata_lab.sandbox import Sandbox, SandboxAccount
from tests.plugins.sandbox import wait_until_indexed
from tests.test_atmosphere_api import ApiSample, ApiView, raw_create
from tests.test_search_network import publish_with_atdata_lab, unique_word

COLL = "app.atdatalab.test.note"


@pytest.fixture
def client(sandbox: Sandbox, pds_account: SandboxAccount) -> Atmosphere:
    return Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url, appview="")


def head_commit(client: Atmosphere) -> str:
    out = client._call(
        "query", "com.atproto.sync.getLatestCommit", params={"did": client.did}, op="read the head commit"
    )
    return out["cid"]


# --- records: both call forms -------------------------------------------------------------------


@pytest.mark.sandbox
def test_get_put_delete_by_uri_and_by_collection(client: Atmosphere, pds_account: SandboxAccount):
    made = client.create_record(COLL, {"text": "one"}, rkey="first")
    uri = made["uri"]  # ours: {"uri", "cid", "value"}
    assert uri == f"at://{client.did}/{COLL}/first"
    # atdata's: the record's AtUri
    assert isinstance(made, AtUri) and str(made) == uri and (made.collection, made.rkey) == (COLL, "first")

    # atdata's form: the value (a dict), which remembers its URI and CID
    value = client.get_record(uri)
    assert isinstance(value, RecordValue) and value == {"$type": COLL, "text": "one"}
    assert (value.uri, value.cid) == (uri, made["cid"])
    assert client.get_record(AtUri.parse(uri)) == value
    by_handle = client.get_record(f"at://{pds_account.handle}/{COLL}/first")
    assert by_handle == value and by_handle.cid == made["cid"]
    # ours: {"uri", "cid", "value"}
    assert client.get_record(COLL, "first") == {"uri": uri, "cid": made["cid"], "value": value}
    assert client.get_record(COLL, "first", repo=pds_account.handle)["cid"] == made["cid"]

    # mixed forms are refused before any request, naming both forms
    before = client.round_trips
    for call in (
        lambda: client.get_record(uri, "first"),
        lambda: client.get_record(uri, repo=client.did),
        lambda: client.get_record(COLL),
        lambda: client.get_record(42),
        lambda: client.delete_record(uri, "first"),
        lambda: client.delete_record(COLL),
        lambda: client.delete_record(f"at://did:plc:abcdefghijklmnopqrstuvwx/{COLL}/first"),
        lambda: client.put_record(COLL, "first", {"text": "x"}, swap_commit="not a cid"),
        lambda: client.upload_blob(b"x", "text/plain", content_type="application/x-tar"),
    ):
        with pytest.raises(InvalidArgumentError) as e:
            call()
        assert isinstance(e.value, ValueError)
    with pytest.raises(InvalidArgumentError, match=r"get_record\(collection, rkey, repo=\.\.\.\)"):
        client.get_record(COLL)
    with pytest.raises(InvalidArgumentError, match="another repository"):
        client.delete_record(f"at://did:plc:abcdefghijklmnopqrstuvwx/{COLL}/first")
    assert client.round_trips == before

    # put_record(swap_commit=): compare-and-swap on the repository's commit
    stale = head_commit(client)
    client.create_record(COLL, {"text": "two"}, rkey="second")
    with pytest.raises(RecordConflictError, match="repository changed"):
        client.put_record(COLL, "first", {"text": "changed"}, swap_commit=stale)
    assert client.get_record(uri)["text"] == "one"
    put = client.put_record(COLL, "first", {"text": "changed"}, swap_commit=head_commit(client))
    assert client.get_record(uri) == {"$type": COLL, "text": "changed"} and put["uri"] == uri
    assert isinstance(put, AtUri) and put.rkey == "first" and put.cid == put["cid"]

    # delete_record(uri, swap_commit=) as atdata; (collection, rkey) as ours
    with pytest.raises(RecordConflictError):
        client.delete_record(uri, swap_commit=stale)
    client.delete_record(uri, swap_commit=head_commit(client))
    with pytest.raises(RecordNotFoundError):
        client.get_record(uri)
    client.delete_record(COLL, "second")
    assert client.list_records(COLL) == ([], None) and client.list_all_records(COLL) == []


@pytest.mark.sandbox
def test_list_records_pages_with_a_cursor_as_atdata(client: Atmosphere):
    for i in range(5):
        client.create_record(COLL, {"n": i}, rkey=f"k{i}")
    everything = client.list_all_records(COLL)  # ours: all of them, {"uri", "cid", "value"}
    assert sorted(r["value"]["n"] for r in everything) == [0, 1, 2, 3, 4]

    pages, values, cursor = 0, [], None
    while True:  # atdata's loop
        page, cursor = client.list_records(COLL, limit=2, cursor=cursor)
        pages += 1
        assert len(page) <= 2 and all(isinstance(v, RecordValue) for v in page)
        values += page
        if not cursor:
            break
        assert pages < 10
    assert [v["n"] for v in values] == [r["value"]["n"] for r in everything]
    assert [v.uri for v in values] == [r["uri"] for r in everything]
    assert [v.cid for v in values] == [r["cid"] for r in everything]
    first, last = client.list_records(COLL)  # atdata's call: the first page (of 100)
    assert len(first) == 5 and last is None
    with pytest.raises(InvalidArgumentError, match="cursor"):
        client.list_records(COLL, cursor="bad\ncursor")


@pytest.mark.sandbox
def test_list_schemas_datasets_lenses_labels(client: Atmosphere, pds_account: SandboxAccount):
    entry = f"at://{client.did}/{R.ENTRY_NSID}/3kaaaaaaaaaaa"
    for i in range(3):
        client.create_record(R.LABEL_NSID, R.label_record(f"lab{i}", entry))
    labels = client.list_labels()
    assert sorted(v["name"] for v in labels) == ["lab0", "lab1", "lab2"]
    assert all(v.uri.startswith(f"at://{client.did}/{R.LABEL_NSID}/") for v in labels)
    with pytest.warns(UserWarning, match="more exist"):
        assert len(client.list_labels(limit=2)) == 2
    assert len(client.list_labels(pds_account.handle, 150)) == 3  # a limit over a page is fine
    schema = SchemaPublisher(client).publish(ApiSample)
    assert [v.uri for v in client.list_schemas()] == [str(schema)]
    assert client.list_datasets() == [] and client.list_lenses(repo=client.did) == []


@pytest.mark.sandbox
def test_upload_blob_get_blob_url_identity(client: Atmosphere, pds_account: SandboxAccount):
    data = b"atdata blob " + uuid.uuid4().bytes
    ref = client.upload_blob(data, "application/x-tar", timeout=120)  # atdata's positional mime_type
    assert ref["mimeType"] == "application/x-tar" and ref["size"] == len(data)
    plain = client.upload_blob(b"no type given " + uuid.uuid4().bytes)  # atdata's default
    assert plain["mimeType"] == "application/octet-stream"
    assert client.upload_blob(data, content_type="application/x-tar")["ref"] == ref["ref"]  # ours
    with pytest.raises(InvalidArgumentError):
        client.upload_blob(data, "text/plain", timeout=-1)

    client.create_record(COLL, {"file": ref}, rkey="with-blob")  # a blob is served once referenced
    cid = ref["ref"]["$link"]
    url = client.get_blob_url(client.did, cid)
    assert url.startswith(f"{client.pds_url}/xrpc/com.atproto.sync.getBlob?")
    assert httpx.get(url, timeout=10).content == data
    assert client.get_blob_url(pds_account.handle, cid) == url
    with pytest.raises(ValueError):
        client.get_blob_url(client.did, "../../etc/passwd")

    assert client.is_authenticated
    assert client.resolve_did(pds_account.handle) == client.did == client.resolve_did(client.did)
    anon = Atmosphere(pds_url=client.pds_url, appview="")
    assert not anon.is_authenticated
    assert anon.resolve_did(pds_account.handle) == client.did


@pytest.mark.sandbox
def test_appview_methods_need_an_appview(client: Atmosphere):
    uri = f"at://{client.did}/{R.ENTRY_NSID}/3kaaaaaaaaaaa"
    for call in (
        lambda: client.search_datasets("x"),
        lambda: client.get_entries([uri]),
        lambda: client.get_entry_stats(uri),
        lambda: client.search_lenses(),
    ):
        with pytest.raises(AppViewRequiredError):
            call()
    with pytest.raises(InvalidArgumentError, match="at most 25"):
        client.get_entries([uri] * 26)
    with pytest.raises(InvalidArgumentError, match="period"):
        client.get_entry_stats(uri, period="year")


# --- the AppView --------------------------------------------------------------------------------


def hostile_entry(client: Atmosphere, word: str) -> str:
    """An entry whose schemaRef names a post, not a schema: the AppView indexes it as it is."""
    return raw_create(
        client,
        R.ENTRY_NSID,
        {
            "$type": R.ENTRY_NSID,
            "name": f"forged-{word}",
            "description": f"forged entry for {word}",
            "tags": [word],
            "schemaRef": f"at://{client.did}/app.bsky.feed.post/3kaaaaaaaaaaa",
            "storage": {
                "$type": R.STORAGE_HTTP,
                "shards": [
                    {
                        "url": "https://example.com/a.tar",
                        "checksum": {"algorithm": "sha256", "digest": "ab" * 32},
                    }
                ],
            },
            "createdAt": "2026-01-01T00:00:00.000Z",
        },
    )


@pytest.mark.appview
@pytest.mark.sandbox
def test_appview_methods_against_the_real_appview(
    appview_sandbox: Sandbox, pds_account: SandboxAccount, tmp_path, caplog
):
    sb, word = appview_sandbox, unique_word()
    uri = publish_with_atdata_lab(sb, pds_account, tmp_path, "kelp-client", word)
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    assert client.appview_url == sb.appview_url
    forged = hostile_entry(client, word)
    wait_until_indexed(sb.appview_url, uri)
    wait_until_indexed(sb.appview_url, forged)

    with caplog.at_level(logging.WARNING, logger="atdata_lab"):
        found = client.search_datasets(word)
    assert [e["uri"] for e in found] == [uri]  # the forged entry was served, and dropped here
    assert "dropped a malformed dataset entry" in caplog.text and forged in caplog.text
    e = found[0]
    assert (e["name"], e["did"], e["size"]["samples"]) == ("kelp-client", pds_account.did, 20)
    assert set(e["tags"]) == {word, "lab"} and e["cid"] and "$type" not in e
    assert [x["uri"] for x in client.search_datasets(word, repo=pds_account.handle, tags=[word])] == [uri]
    assert client.search_datasets(word, tags=["no-such-tag-" + word]) == []
    assert client.search_datasets(word, schema_ref=e["schemaRef"], limit=1)[0]["uri"] == uri

    got = client.get_entries([uri, forged])
    assert [x["uri"] for x in got] == [uri] and got[0]["cid"] == e["cid"]
    stats = client.get_entry_stats(uri)
    assert set(stats) == {"views", "searchAppearances", "period"} and stats["period"] == "week"
    assert all(isinstance(stats[k], int) and stats[k] >= 0 for k in ("views", "searchAppearances"))
    assert client.get_entry_stats(uri, "day")["period"] == "day"

    # lenses: published with our LensPublisher, found through the AppView
    src = str(SchemaPublisher(client).publish(ApiSample))
    dst = str(SchemaPublisher(client).publish(ApiView))
    lens_uri = str(
        LensPublisher(client).publish(
            name=f"lens-{word}",
            source_schema_uri=src,
            target_schema_uri=dst,
            code_repository="https://github.com/org/repo",
            code_commit="c" * 40,
            getter_path="lenses.py:get",
            putter_path="lenses.py:put",
            language="python",
        )
    )
    deadline = time.monotonic() + 30
    while not (lenses := client.search_lenses(source_schema=src)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [x["uri"] for x in lenses] == [lens_uri]
    assert (lenses[0]["targetSchema"], lenses[0]["did"], lenses[0]["name"]) == (
        dst,
        client.did,
        f"lens-{word}",
    )
    assert lenses[0]["getterCode"]["path"] == "lenses.py:get"
    assert [x["uri"] for x in client.search_lenses(source_schema=src, target_schema=dst)] == [lens_uri]
    assert client.search_lenses(source_schema=dst) == []

    # the AppView stopped: unavailable, a ConnectionError naming it; reads of the PDS unaffected
    old = sb.appview_url
    sb.stop_appview()
    for call in (
        lambda: client.search_datasets(word),
        lambda: client.get_entries([uri]),
        lambda: client.get_entry_stats(uri),
        lambda: client.search_lenses(source_schema=src),
    ):
        with pytest.raises(AppViewUnavailableError, match=old) as err:
            call()
        assert isinstance(err.value, ConnectionError)
    assert client.get_record(uri)["name"] == "kelp-client"
