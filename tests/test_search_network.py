"""Search across publishers against the real network: the sandbox PDS + PLC, Debian's PostgreSQL,
the bridge and the real AppView (atdata-app 0.4.0b1), and the real atdata 0.7 as one publisher.

* Two publishers (one with atdata-lab, one with atdata 0.7 in its Python 3.12 venv) publish; a third
  user finds both through ``index.search(scope="network")`` and loads both.
* The AppView stopped mid-session: ``AppViewUnavailableError`` where it is required, the
  publisher's PDS where atdata falls back, and after it returns its answers again (nothing kept
  from the fallback).

The one stand-in (``test_a_record_the_appview_lacks_is_read_from_the_pds``) answers 404 for a
record the real PDS holds: the real AppView cannot be made to lack an indexed record on demand.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import AppViewUnavailableError
from atdata_lab.sandbox import Sandbox, SandboxAccount
from atdata_lab.search import AppViewSearchBackend
from tests.plugins.sandbox import wait_until_indexed
from tests.support import atdata_reference as ref
from tests.test_search import StandIn

pytestmark = [pytest.mark.sandbox, pytest.mark.appview]


@atdata.packable
class OurRow:
    x: NDArray
    label: int


def unique_word() -> str:
    return "kelp" + uuid.uuid4().hex[:10]  # one search token, found only by this test


def publish_with_atdata_lab(sb: Sandbox, account: SandboxAccount, tmp_path, name: str, word: str) -> str:
    client = Atmosphere.login(account.handle, account.password, pds_url=sb.pds_url, appview="")
    index = atdata.Index(
        path=tmp_path / f"{name}.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / name)
    )
    rows = [OurRow(x=np.arange(4, dtype=np.int64) + i, label=i % 3) for i in range(20)]
    index.write(rows, name=name, maxcount=10, progress=False)
    return index.promote_entry(
        name,
        description=f"rows from atdata-lab for the {word} search test",
        tags=[word, "lab"],
        copy_to="blobs",  # others load it from the PDS (a local file:// shard is refused to them)
        progress=False,
    )


def publish_with_atdata(sb: Sandbox, account: SandboxAccount, name: str, word: str) -> str:
    out = ref.publish_dataset_with_atdata(sb.pds_url, account.handle, account.password, name, word)
    assert out["did"] == account.did
    return out["uri"]


def test_a_third_user_finds_and_loads_two_publishers_datasets(
    appview_sandbox: Sandbox, pds_account: SandboxAccount, tmp_path
):
    sb, word = appview_sandbox, unique_word()
    alice, bob = sb.create_account(), sb.create_account()
    ours = publish_with_atdata_lab(sb, alice, tmp_path, "reef-lab", word)
    theirs = publish_with_atdata(sb, bob, "reef-atdata", word)
    for uri in (ours, theirs):
        wait_until_indexed(sb.appview_url, uri)

    # the third user: logged in from the sandbox's environment (ATDATA_APPVIEW_URL included)
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    assert client.appview_url == sb.appview_url
    index = atdata.Index(path=tmp_path / "third.db", atmosphere=client)
    page = index.search(word, scope="network")
    found = {r.uri: r for r in page.items}
    assert set(found) == {ours, theirs} and list(page) == [] and page.source == "atmosphere"
    lab, at = found[ours], found[theirs]
    assert (lab.name, lab.did, lab.handle, lab.source) == ("reef-lab", alice.did, alice.handle, "atmosphere")
    assert (at.name, at.did, at.handle, at.storage, at.license) == (
        "reef-atdata",
        bob.did,
        bob.handle,
        "blobs",
        "MIT",
    )
    assert (
        lab.num_samples == 20
        and set(lab.tags) == {word, "lab"}
        and lab.schema_ref.startswith(f"at://{alice.did}/")
    )

    # atdata's loop over the default scope: local and network merged (nothing local here)
    assert {r.uri for r in index.search(text=word).items} == {ours, theirs}
    assert [r.uri for r in index.search(word, tags=["atdata"], scope="network").items] == [theirs]
    assert [r.uri for r in index.search(word, repo=alice.handle, scope="network").items] == [ours]
    assert [r.uri for r in index.search(tags=[word, "lab"], scope="network").items] == [
        ours
    ]  # no text: listed

    # ... and loads both, by @handle/name and by URI
    mine = atdata.load_dataset(f"@{lab.handle}/{lab.name}", index=index, split="train")
    assert len(mine) == 20 and sorted(int(s.label) for s in mine)[:3] == [0, 0, 0]
    other = atdata.load_dataset(f"@{at.handle}/{at.name}", index=index, split="train")
    rows = sorted(other, key=lambda s: int(s.x[0]))
    assert len(rows) == 12 and rows[1].x.tolist() == [1, 11, 21, 31] and int(rows[5].label) == 1
    assert len(atdata.load_dataset(at.uri, index=index, split="train")) == 12


def test_appview_stopped_mid_session(
    appview_sandbox: Sandbox, pds_account: SandboxAccount, tmp_path, monkeypatch
):
    sb, word = appview_sandbox, unique_word()
    uri = publish_with_atdata_lab(sb, pds_account, tmp_path, "tide-lab", word)
    wait_until_indexed(sb.appview_url, uri)
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(path=tmp_path / "reader.db", atmosphere=client)
    index.write(
        [OurRow(x=np.zeros(4, dtype=np.int64), label=0)], name=f"local-{word}", tags=[word], progress=False
    )
    assert {r.source for r in index.search(word).items} == {"local", "atmosphere"}

    old_url = sb.appview_url
    sb.stop_appview()
    try:
        # required: a clear error naming the URL and the fix
        with pytest.raises(AppViewUnavailableError, match=old_url) as e:
            index.search(word, scope="network")
        assert isinstance(e.value, ConnectionError) and "sandbox start --appview" in str(e.value)
        # optional (atdata's default, local and network): local results and a warning
        page = index.search(word)
        assert [r.source for r in page.items] == ["local"] and "unavailable" in page.warnings[0]
        # where atdata falls back to the publisher's PDS: one publisher's datasets, one record
        fell = index.search(word, scope="network", repo=pds_account.handle)
        assert [(r.uri, r.source) for r in fell.items] == [(uri, "pds")] and fell.source == "pds"
        assert "read" in fell.warnings[0] and old_url in fell.warnings[0]
        got = AppViewSearchBackend(client).get_entry(uri)
        assert (got.source, got.name, got.handle, got.num_samples) == (
            "pds",
            "tide-lab",
            pds_account.handle,
            20,
        )
        assert len(atdata.load_dataset(uri, index=index, split="train")) == 20  # loading never needed it
    finally:
        sb.start_appview()

    # the AppView is back (a fresh one, at a new address, that backfills): its answers again
    wait_until_indexed(sb.appview_url, uri)
    monkeypatch.setenv("ATDATA_APPVIEW_URL", sb.appview_url)
    again = Atmosphere.login(pds_account.handle, pds_account.password)
    index.atmosphere = again
    page = index.search(word, scope="network")
    assert [(r.uri, r.source) for r in page.items] == [(uri, "atmosphere")] and page.warnings == []
    assert AppViewSearchBackend(again).get_entry(uri).source == "atmosphere"
    assert index.search(word, scope="network", repo=pds_account.handle).source == "atmosphere"
    bare = atdata.Index(path=tmp_path / "bare.db")  # no atmosphere: the environment's AppView
    assert [r.uri for r in bare.search(word, scope="network").items] == [uri]


def test_a_record_the_appview_lacks_is_read_from_the_pds(
    pds_account: SandboxAccount, tmp_path, sandbox: Sandbox
):
    uri = publish_with_atdata_lab(sandbox, pds_account, tmp_path, "lacking", unique_word())
    stand_in = StandIn()
    try:
        stand_in.answer("getEntry", {"error": "NotFound", "message": "Entry not found"}, status=404)
        client = Atmosphere.login(pds_account.handle, pds_account.password, appview=stand_in.url)
        got = AppViewSearchBackend(client).get_entry(uri)
        assert (got.source, got.uri, got.name) == ("pds", uri, "lacking")
        assert any("getEntry" in h for h in stand_in.hits)
        # served malformed (another record, a forged name): the PDS is read instead
        stand_in.answer("getEntry", {"entry": {"uri": uri, "name": "x" * 999}})
        assert AppViewSearchBackend(client).get_entry(uri).name == "lacking"
    finally:
        stand_in.close()
    assert json.loads(json.dumps(got.record))["value"]["name"] == "lacking"


def test_a_procedure_goes_through_the_pds_to_the_appview(
    appview_sandbox: Sandbox, pds_account: SandboxAccount
):
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    assert client.describe_service()["did"]  # a query goes straight to the AppView
    # A procedure is POSTed to our PDS with atproto-proxy naming the AppView's did:web; the sandbox
    # PDS resolves a did:web over https only, so it cannot reach the loopback AppView and fails
    # (500): that is the AppView being unreachable, said so, and the write is not retried.
    client.round_trips = 0
    with pytest.raises(AppViewUnavailableError, match=appview_sandbox.appview_url):
        client.xrpc_procedure("science.alt.dataset.publishLabel", {"record": {"name": "x"}})
    assert client.round_trips == 1
