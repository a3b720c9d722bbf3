"""The ATProto client against the REAL local PDS (``sandbox`` fixture), plus a few pure checks.

Only faults the real server cannot produce on demand (a 503 burst, a 429 with chosen headers, a
response lost after the server acted) are injected, by an httpx transport that wraps the real
connection to the real PDS; those tests say so in their docstrings.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import stat
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as R
from atdata_lab.atmosphere._http import PDSResponse, _reset_at, _retry_after_seconds
from atdata_lab.errors import (
    AuthenticationError,
    PDSUnavailableError,
    RateLimitedError,
    RecordConflictError,
    RecordNotFoundError,
    RecordSizeError,
    RecordTooLargeError,
    RecordValidationError,
    RequestError,
)

LABEL = "science.alt.dataset.label"
ENTRY = "science.alt.dataset.entry"
SCHEMA = "science.alt.dataset.schema"
SHA = hashlib.sha256(b"x").hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def label(did: str, name: str = "mnist", **kw) -> dict:
    return R.label_record(name, f"at://{did}/{ENTRY}/3kabcdefghij2", **kw)


# ------------------------------------------------------------------------------------------------
# pure
# ------------------------------------------------------------------------------------------------


def test_import_atdata_lab_does_not_import_atproto():
    code = (
        "import sys, atdata_lab, atdata_lab.atmosphere, atdata_lab.atmosphere.records, "
        "atdata_lab.atmosphere.lexicon; assert not any(m.startswith('atproto') for m in sys.modules), "
        "[m for m in sys.modules if m.startswith('atproto')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_rate_limit_header_parsing():
    now = time.time()
    r = PDSResponse(429, headers={"ratelimit-reset": str(int(now + 60))})
    assert 55 < _retry_after_seconds(r) <= 60
    assert _reset_at(r) == datetime.fromtimestamp(int(now + 60), tz=UTC)
    assert _retry_after_seconds(PDSResponse(429, headers={"retry-after": "2.5"})) == 2.5
    assert _retry_after_seconds(PDSResponse(503)) is None
    assert _reset_at(PDSResponse(429, headers={"retry-after": "10"})) > datetime.now(UTC)


def test_anonymous_client_repr_and_login_required():
    a = Atmosphere("http://127.0.0.1:1/")
    assert repr(a) == "Atmosphere(handle=None, did=None, pds_url='http://127.0.0.1:1')"
    with pytest.raises(AuthenticationError, match="log in"):
        a.create_record(LABEL, label("did:plc:abc"))


def test_connection_refused_names_url_and_fix():
    """A real refused connection (nothing listens on the port): no mock needed."""
    port = free_port()
    a = Atmosphere(f"http://127.0.0.1:{port}", max_tries=4)
    t0 = time.monotonic()
    with pytest.raises(PDSUnavailableError) as ei:
        a.get_record(LABEL, "abc", repo="did:plc:abcdefghijklmnopqrstuvwx")
    msg = str(ei.value)
    assert f"127.0.0.1:{port}" in msg and "atdata-lab sandbox start" in msg
    assert time.monotonic() - t0 < 3  # refused connections fail fast, no backoff
    with pytest.raises(PDSUnavailableError, match="atdata-lab sandbox start"):
        Atmosphere.login("alice.test", "pw-never-shown", pds_url=f"http://127.0.0.1:{port}")


# ------------------------------------------------------------------------------------------------
# login, sessions, secrets
# ------------------------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_login_properties_and_round_trips(sandbox, pds_account):
    a = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    assert (a.did, a.handle, a.pds_url) == (pds_account.did, pds_account.handle, sandbox.pds_url)
    assert a.round_trips == 1
    assert pds_account.password not in repr(a) and pds_account.password not in str(a)
    assert (
        repr(a)
        == f"Atmosphere(handle={pds_account.handle!r}, did={pds_account.did!r}, pds_url={sandbox.pds_url!r})"
    )
    # the password is not kept anywhere on the object (nor on the SDK client it wraps)
    for obj in (a, a._sdk, a._sdk._session):
        assert pds_account.password not in repr(vars(obj))


@pytest.mark.sandbox
def test_password_never_in_errors_repr_or_debug_logs(sandbox, pds_account, caplog):
    secret = "Wr0ng-" + pds_account.password
    caplog.set_level(logging.DEBUG)  # every logger, including httpx/httpcore/atproto
    with pytest.raises(AuthenticationError) as ei:
        Atmosphere.login(pds_account.handle, secret, pds_url=sandbox.pds_url)
    e = ei.value
    assert e.status == 401 and isinstance(e.response, PDSResponse)
    assert "log" in str(e) and pds_account.handle in str(e)
    texts = [str(e), repr(e), repr(e.args), repr(e.response)]
    texts += traceback.format_exception(type(e), e, e.__traceback__)
    assert e.__cause__ is None and e.__context__ is None  # no SDK frames holding the password
    for t in texts:
        assert secret not in t and pds_account.password not in t
    # successful login at DEBUG as well
    a = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    a.create_record(LABEL, label(a.did))
    records = caplog.records
    assert records, "expected DEBUG log records"
    for rec in records:
        line = rec.getMessage() + repr(rec.args) + repr(rec.__dict__)
        assert secret not in line and pds_account.password not in line


@pytest.mark.sandbox
def test_from_env_and_sessions(sandbox, pds_account, tmp_path):
    a = Atmosphere.from_env()  # pds_account set ATDATA_HANDLE/PASSWORD/PDS_URL
    assert a.did == pds_account.did
    s = a.export_session()
    assert pds_account.password not in s
    b = Atmosphere.from_session(s)
    assert (b.did, b.handle, b.pds_url, b.round_trips) == (a.did, a.handle, sandbox.pds_url, 1)
    b.create_record(LABEL, label(b.did))
    p = b.save_session(tmp_path / "sub" / "session.txt")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert Atmosphere.from_session(p.read_text()).did == a.did
    with pytest.raises(AuthenticationError, match="session string"):
        Atmosphere.from_session("garbage")


@pytest.mark.sandbox
def test_login_resolves_pds_from_did_document(sandbox, pds_account, monkeypatch):
    """No pds_url and no ATDATA_PDS_URL: DID -> PLC directory -> #atproto_pds service endpoint."""
    monkeypatch.delenv("ATDATA_PDS_URL")
    a = Atmosphere.login(pds_account.did, pds_account.password, plc_url=sandbox.plc_url)
    assert a.did == pds_account.did and a.pds_url.endswith(f":{sandbox.pds_port}")
    monkeypatch.setenv("ATDATA_PLC_URL", sandbox.plc_url)
    with pytest.raises(AuthenticationError, match="cannot resolve the handle"):
        Atmosphere.login("nobody.invalid", "x")


@pytest.mark.sandbox
def test_expired_access_token_is_refreshed(sandbox, pds_account, tmp_path):
    """The SDK refreshes an expiring access token: simulate the clock 3 h ahead (token lasts 2 h)."""
    a = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    before = a.export_session()
    path = a.save_session(tmp_path / "s.txt", keep_updated=True)
    real_now = a._sdk.get_current_time
    a._sdk.get_current_time = lambda: real_now() + timedelta(hours=3)
    a.round_trips = 0
    rec = a.create_record(LABEL, label(a.did))
    assert a.round_trips == 2  # refreshSession + createRecord
    assert rec["cid"]
    after = a.export_session()
    assert after != before and path.read_text() == after  # new tokens, saved file kept current
    a._sdk.get_current_time = real_now
    assert a.get_record(LABEL, rec["uri"].rsplit("/", 1)[1])["cid"] == rec["cid"]


@pytest.mark.sandbox
def test_revoked_session_says_log_in_again(sandbox, pds_account):
    a = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    refresh = a._sdk._session.refresh_jwt
    r = httpx.post(
        f"{sandbox.pds_url}/xrpc/com.atproto.server.deleteSession",
        headers={"Authorization": f"Bearer {refresh}"},
    )
    assert r.status_code == 200
    real_now = a._sdk.get_current_time
    a._sdk.get_current_time = lambda: real_now() + timedelta(hours=3)  # forces a refresh
    with pytest.raises(AuthenticationError) as ei:
        a.list_all_records(LABEL)
    assert "log in again" in str(ei.value) and ei.value.response is not None


# ------------------------------------------------------------------------------------------------
# records
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def atm(sandbox, pds_account):
    a = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    yield a
    a.close()


@pytest.mark.sandbox
def test_create_get_put_delete(atm):
    rec = label(atm.did)
    out = atm.create_record(LABEL, rec, rkey="first")
    assert set(out) == {"uri", "cid", "value"}
    assert out["uri"] == f"at://{atm.did}/{LABEL}/first"
    assert out["cid"] == R.record_cid(out["value"])  # our local CID equals the PDS's
    got = atm.get_record(LABEL, "first")
    assert got == {"uri": out["uri"], "cid": out["cid"], "value": rec}
    # put with a stale swap -> conflict; with the right one -> ok
    new = label(atm.did, name="renamed")
    with pytest.raises(RecordConflictError) as ei:
        atm.put_record(LABEL, "first", new, swap_record=R.record_cid({"x": 1}))
    assert ei.value.current_cid == out["cid"] and "changed since it was read" in str(ei.value)
    put = atm.put_record(LABEL, "first", new, swap_record=out["cid"])
    assert atm.get_record(LABEL, "first")["value"]["name"] == "renamed" and put["cid"] != out["cid"]
    atm.delete_record(LABEL, "first")
    with pytest.raises(RecordNotFoundError) as nf:
        atm.get_record(LABEL, "first")
    assert (
        isinstance(nf.value, KeyError)
        and nf.value.status == 400
        and nf.value.response.error == "RecordNotFound"
    )
    atm.delete_record(LABEL, "first")  # deleting a missing record is fine


@pytest.mark.sandbox
def test_create_default_rkey_is_a_tid_and_create_is_idempotent(atm):
    rec = label(atm.did)
    out = atm.create_record(LABEL, rec)
    rkey = out["uri"].rsplit("/", 1)[1]
    assert R.is_valid_tid(rkey)
    atm.round_trips = 0
    again = atm.create_record(LABEL, rec, rkey=rkey)  # same key, same content: fine
    assert again["cid"] == out["cid"] and atm.round_trips == 2  # the PDS's 500, then one getRecord
    t0 = time.monotonic()
    with pytest.raises(RecordConflictError) as ei:
        atm.create_record(LABEL, label(atm.did, name="other"), rkey=rkey)
    assert ei.value.current_cid == out["cid"] and time.monotonic() - t0 < 2  # no blind retries
    assert ei.value.status == 500 and ei.value.response.status_code == 500  # the PDS's answer to the create
    assert len(atm.list_all_records(LABEL)) == 1


@pytest.mark.sandbox
def test_local_validation_before_any_request(atm):
    atm.round_trips = 0
    with pytest.raises(RecordValidationError, match=r"label.name: 201 characters, the limit is 200"):
        atm.create_record(LABEL, {**label(atm.did), "name": "n" * 201})
    with pytest.raises(RecordValidationError, match="float"):
        atm.create_record("org.example.thing", {"score": 0.5})
    with pytest.raises(RecordValidationError, match="does not match the collection"):
        atm.create_record(ENTRY, label(atm.did))
    with pytest.raises(RecordSizeError):
        atm.create_record("org.example.thing", {"blob": "x" * 1_000_000})
    with pytest.raises(RecordValidationError, match="201 writes, the limit is 200"):
        atm.apply_writes([{"action": "create", "collection": LABEL, "value": label(atm.did)}] * 201)
    with pytest.raises(RecordSizeError, match="applyWrites body"):
        atm.apply_writes(
            [{"action": "create", "collection": "org.example.thing", "value": {"t": "x" * 300_000}}] * 4
        )
    assert atm.round_trips == 0


@pytest.mark.sandbox
def test_validate_flag_is_passed_to_the_pds(atm):
    with pytest.raises(RequestError) as ei:
        atm.create_record("org.example.thing", {"n": 1}, validate=True)
    assert ei.value.status == 400 and "lexicon" in str(ei.value).lower()
    assert atm.create_record("org.example.thing", {"n": 1}, validate=False)["cid"]


@pytest.mark.sandbox
def test_apply_writes_promotion_in_one_round_trip(atm):
    local = {
        "name": "Sample",
        "version": "1.0.0",
        "fields": [
            {
                "name": "x",
                "fieldType": {"$type": "local#ndarray", "dtype": "<f4", "shape": [3]},
                "optional": False,
            }
        ],
    }
    schema_rkey, entry_rkey, label_rkey = R.schema_rkey("Sample", "1.0.0"), R.make_tid(), R.make_tid()
    schema_uri = f"at://{atm.did}/{SCHEMA}/{schema_rkey}"
    entry_uri = f"at://{atm.did}/{ENTRY}/{entry_rkey}"
    writes = [
        {"action": "create", "collection": SCHEMA, "rkey": schema_rkey, "value": R.schema_record(local)},
        {
            "action": "create",
            "collection": ENTRY,
            "rkey": entry_rkey,
            "value": R.entry_record("d", schema_uri, R.storage_http([("https://x/a.tar", SHA)])),
        },
        {
            "action": "create",
            "collection": LABEL,
            "rkey": label_rkey,
            "value": R.label_record("d", entry_uri, version="1.0.0"),
        },
    ]
    atm.round_trips = 0
    res = atm.apply_writes(writes)
    assert atm.round_trips == 1
    assert [r["uri"] for r in res] == [schema_uri, entry_uri, f"at://{atm.did}/{LABEL}/{label_rkey}"]
    for r, w in zip(res, writes, strict=True):
        assert r["cid"] == R.record_cid(w["value"]) and r["action"] == "create"
    back = atm.get_record(SCHEMA, schema_rkey)["value"]
    assert R.local_schema_from_record(back)["fields"] == local["fields"]

    # atomic: a batch whose create hits a taken rkey writes nothing at all
    fresh = R.make_tid()
    bad = [
        {"action": "create", "collection": LABEL, "rkey": fresh, "value": label(atm.did, name="new")},
        {"action": "create", "collection": LABEL, "rkey": label_rkey, "value": label(atm.did, name="clash")},
    ]
    with pytest.raises(RecordConflictError, match=label_rkey):
        atm.apply_writes(bad)
    with pytest.raises(RecordNotFoundError):
        atm.get_record(LABEL, fresh)
    # updates and deletes
    upd = label(atm.did, name="upd")
    res = atm.apply_writes(
        [
            {"action": "update", "collection": LABEL, "rkey": label_rkey, "value": upd},
            {"action": "delete", "collection": ENTRY, "rkey": entry_rkey},
        ]
    )
    assert res[0]["cid"] == R.record_cid(upd) and res[1]["cid"] is None
    assert atm.get_record(LABEL, label_rkey)["value"]["name"] == "upd"
    with pytest.raises(RecordNotFoundError):
        atm.get_record(ENTRY, entry_rkey)
    # re-applying an identical batch of creates is idempotent (the repo already holds it)
    atm.round_trips = 0
    again = atm.apply_writes(writes[:1])
    assert again[0]["cid"] == R.record_cid(writes[0]["value"])
    assert atm.round_trips == 2  # the PDS's 500 (rkey taken), then one getRecord proving it is ours


@pytest.mark.sandbox
def test_list_records_follows_cursors_to_the_end(atm):
    for start in (0, 200):
        n = 200 if start == 0 else 50
        atm.apply_writes(
            [
                {
                    "action": "create",
                    "collection": LABEL,
                    "rkey": f"k{start + i:04d}",
                    "value": label(atm.did, name=f"n{start + i}"),
                }
                for i in range(n)
            ]
        )
    atm.round_trips = 0
    allrecs = atm.list_all_records(LABEL)
    assert len(allrecs) == 250 and atm.round_trips == 3
    assert {r["uri"].rsplit("/", 1)[1] for r in allrecs} == {f"k{i:04d}" for i in range(250)}
    assert all(set(r) == {"uri", "cid", "value"} for r in allrecs)
    atm.round_trips = 0
    some = atm.list_all_records(LABEL, limit=120, reverse=True)
    assert len(some) == 120 and atm.round_trips == 2
    assert some[0]["uri"].endswith("k0000")
    assert atm.list_all_records("org.example.empty") == []


@pytest.mark.sandbox
def test_reading_another_accounts_repo(sandbox, atm):
    bob = sandbox.create_account()
    b = Atmosphere.login(bob.handle, bob.password, pds_url=sandbox.pds_url)
    out = b.create_record(LABEL, label(b.did), rkey="bobs")
    assert atm.resolve_handle(bob.handle) == bob.did
    assert atm.resolve_handle(bob.did) == bob.did
    assert atm.get_repo_pds(bob.did) == sandbox.pds_url
    assert atm.get_record(LABEL, "bobs", repo=bob.handle)["cid"] == out["cid"]
    assert len(atm.list_all_records(LABEL, repo=bob.did)) == 1
    anon = Atmosphere(sandbox.pds_url)
    assert anon.get_record(LABEL, "bobs", repo=bob.did)["cid"] == out["cid"]
    with pytest.raises(RecordNotFoundError):
        atm.resolve_handle("nobody-here.test")


@pytest.mark.sandbox
def test_describe_server(atm, sandbox):
    info = atm.describe_server()
    assert info["blobUploadLimit"] == sandbox.blob_upload_limit
    assert info["blobUploadLimitSource"] in ("server", "default")
    assert ".test" in info["availableUserDomains"]


# ------------------------------------------------------------------------------------------------
# blobs
# ------------------------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_blobs_upload_reference_download(atm, tmp_path):
    data = os.urandom(1_500_000)
    path = tmp_path / "shard.tar"
    path.write_bytes(data)
    refs = [
        atm.upload_blob(data, content_type="application/x-tar"),
        atm.upload_blob(path, content_type="application/x-tar"),
        atm.upload_blob(io.BytesIO(data), content_type="application/x-tar"),
    ]
    ref = refs[0]
    assert all(r == ref for r in refs)
    assert ref["$type"] == "blob" and ref["mimeType"] == "application/x-tar" and ref["size"] == len(data)
    cid = ref["ref"]["$link"]
    assert cid.startswith("bafkrei")
    with pytest.raises(RecordNotFoundError, match="not found"):
        atm.get_blob(atm.did, cid)  # not yet referenced by a record
    entry = R.entry_record(
        "blobbed",
        f"at://{atm.did}/{SCHEMA}/s",
        R.storage_blobs([{"blob": ref, "sha256": hashlib.sha256(data).hexdigest()}]),
    )
    out = atm.create_record(ENTRY, entry)
    parsed = R.entry_from_record(atm.get_record(ENTRY, out["uri"].rsplit("/", 1)[1])["value"])
    assert parsed["storage"]["shards"][0]["cid"] == cid
    assert atm.get_blob(atm.did, cid) == data
    events = []
    dest = atm.download_blob(atm.handle, cid, tmp_path / "dl" / "x.tar", progress=events.append)
    assert dest.read_bytes() == data
    assert events[-1].finished and events[-1].done == len(data) and events[-1].unit == "bytes"
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["x.tar"]  # no temp file left
    # a JSON blob comes back as the exact bytes, not parsed
    raw = b'{"b": 1,  "a": [2]}'
    jref = atm.upload_blob(raw, content_type="application/json")
    assert jref["mimeType"] == "application/json"
    atm.create_record("org.example.thing", {"file": jref})
    assert atm.get_blob(atm.did, jref["ref"]["$link"]) == raw


@pytest.mark.sandbox
def test_blob_over_the_limit(atm, sandbox):
    too_big = b"\0" * (sandbox.blob_upload_limit + 1)
    with pytest.raises(RecordTooLargeError) as ei:
        atm.upload_blob(too_big, content_type="application/octet-stream")
    assert f"{len(too_big):,}" in str(ei.value) and ei.value.response is not None


# ------------------------------------------------------------------------------------------------
# retries: faults injected in front of the real PDS
# ------------------------------------------------------------------------------------------------


class FaultTransport(httpx.BaseTransport):
    """Forwards to the real PDS, except for scripted faults (matched by XRPC method name).

    Kinds: ``"503"`` (answer 503 without forwarding), ``"lost"`` (forward, let the PDS act,
    then answer 503 — the response is lost), ``("429", headers)``.
    """

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.plan: list[tuple[str, object]] = []
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit("/", 1)[-1].rsplit(".", 1)[-1]  # e.g. "getRecord"
        self.seen.append(nsid)
        for i, (want, kind) in enumerate(self.plan):
            if want == nsid:
                del self.plan[i]
                if kind == "503":
                    return httpx.Response(503, json={"error": "ServiceUnavailable", "message": "injected"})
                if kind == "lost":
                    resp = self.real.handle_request(request)
                    resp.read()
                    resp.close()
                    return httpx.Response(503, json={"error": "ServiceUnavailable", "message": "injected"})
                code, headers = kind
                return httpx.Response(
                    int(code), headers=headers, json={"error": "RateLimitExceeded", "message": "injected"}
                )
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def faulty(sandbox, pds_account):
    t = FaultTransport()
    a = Atmosphere.login(
        pds_account.handle,
        pds_account.password,
        pds_url=sandbox.pds_url,
        transport=t,
        backoff=0.01,
        max_wait=5,
    )
    a.round_trips = 0
    return a, t


@pytest.mark.sandbox
def test_503_burst_is_retried(faulty):
    """Injected fault (the real PDS cannot produce a 503 burst on demand): 2 x 503, then the real answer."""
    a, t = faulty
    rec = a.create_record(LABEL, label(a.did), rkey="r1")
    t.plan += [("getRecord", "503"), ("getRecord", "503")]
    a.round_trips = 0
    assert a.get_record(LABEL, "r1")["cid"] == rec["cid"]
    assert a.round_trips == 3


@pytest.mark.sandbox
def test_503_forever_gives_up_after_max_tries(faulty):
    """Injected fault: the PDS answers 503 every time; 4 tries, then PDSUnavailableError with the response."""
    a, t = faulty
    t.plan += [("getRecord", "503")] * 10
    with pytest.raises(PDSUnavailableError) as ei:
        a.get_record(LABEL, "r1")
    assert a.round_trips == 4 and ei.value.status == 503 and ei.value.response.message == "injected"


@pytest.mark.sandbox
def test_429_honours_retry_after_and_reports_reset_at(faulty):
    """Injected fault (rate limits are off on the sandbox): 429 with retry-after, then ratelimit-reset far away."""
    a, t = faulty
    t.plan.append(("listRecords", ("429", {"retry-after": "0.2"})))
    t0 = time.monotonic()
    assert a.list_all_records(LABEL) == []
    assert time.monotonic() - t0 >= 0.2 and a.round_trips == 2
    reset = int(time.time()) + 3600
    t.plan.append(("listRecords", ("429", {"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})))
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as ei:
        a.list_all_records(LABEL)
    assert time.monotonic() - t0 < 1  # beyond the budget: raised at once, no pointless sleeping
    assert ei.value.reset_at == datetime.fromtimestamp(reset, tz=UTC) and ei.value.status == 429


@pytest.mark.sandbox
def test_429_on_a_write_is_retried(faulty):
    """Injected fault: a 429 means the server did nothing, so even a create is retried."""
    a, t = faulty
    t.plan.append(("createRecord", ("429", {"retry-after": "0"})))
    out = a.create_record(LABEL, label(a.did))
    assert out["cid"] and t.seen.count("createRecord") == 2


@pytest.mark.sandbox
def test_lost_create_response_is_retried_safely(faulty):
    """Injected fault: the PDS creates the record but the answer is lost (503). The retry finds the
    record holding exactly our content and succeeds; exactly one record exists."""
    a, t = faulty
    t.plan.append(("createRecord", "lost"))
    out = a.create_record(LABEL, label(a.did))
    assert out["cid"] == R.record_cid(out["value"])
    assert len(a.list_all_records(LABEL)) == 1
    assert t.seen.count("createRecord") == 1  # the PDS's state answered it: no second create sent


@pytest.mark.sandbox
def test_lost_apply_writes_response_is_retried_safely(faulty):
    """Injected fault: applyWrites lands but its answer is lost; the check finds the batch applied."""
    a, t = faulty
    t.plan.append(("applyWrites", "lost"))
    writes = [
        {"action": "create", "collection": LABEL, "value": label(a.did, name=f"n{i}")} for i in range(3)
    ]
    res = a.apply_writes(writes)
    assert len(res) == 3 and all(
        r["cid"] == R.record_cid(w["value"]) for r, w in zip(res, writes, strict=True)
    )
    assert len(a.list_all_records(LABEL)) == 3


@pytest.mark.sandbox
def test_503_before_apply_writes_is_retried(faulty):
    """Injected fault: applyWrites gets a 503 before reaching the PDS; the check sees nothing written, retries."""
    a, t = faulty
    t.plan.append(("applyWrites", "503"))
    res = a.apply_writes([{"action": "create", "collection": LABEL, "value": label(a.did)}])
    assert res[0]["cid"] and t.seen.count("applyWrites") == 2
    assert len(a.list_all_records(LABEL)) == 1


@pytest.mark.sandbox
def test_one_shot_stream_upload_is_not_retried(faulty):
    """Injected fault: a non-seekable stream cannot be re-sent, so a 503 is final."""
    a, t = faulty

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.buf = io.BytesIO(b"abc" * 100)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self.buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    t.plan.append(("uploadBlob", "503"))
    with pytest.raises(PDSUnavailableError):
        a.upload_blob(Pipe(), content_type="application/octet-stream")
    assert t.seen.count("uploadBlob") == 1
