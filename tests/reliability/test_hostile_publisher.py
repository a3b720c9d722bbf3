"""Loading someone else's dataset is safe: each numbered case of issue 13, tried as a hostile publisher.

The victim is an account on the real sandbox PDS with a dataset of its own (``precious``) under its
``ATDATA_HOME``; the attacker is a second sandbox account that writes records with raw XRPC (no
local validation: the PDS stores any JSON for these collections). Small loopback servers count every
request that reaches them. A stand-in replaces a real part only where the real part cannot misbehave
as needed (a PDS forging blob CIDs, handing out cursors forever or absurd JSON; a data host that
ignores ``Range`` or swaps bytes; an S3 endpoint chosen by a record; a DNS answer that changes), and
each such test says so.

Every test asserts the new behaviour and the invariants: nothing outside ``$ATDATA_HOME/cache`` is
touched (the file tree is hashed before and after), no request reaches a refused address, no
``Authorization`` header reaches an endpoint the user did not configure, memory stays bounded (reads
of hostile hosts run in a child process capped with ``RLIMIT_AS``), and no sample of a bad shard is
ever returned.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import atdata_lab as atdata
from atdata_lab import urls
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.cid import BlobCID
from atdata_lab.errors import (
    AtdataLabError,
    BlobMismatchError,
    RecordValidationError,
    RemoteAccessDeniedError,
    RemoteUnavailableError,
    RequestError,
    ResponseTooLargeError,
    SchemaError,
    ShardError,
    ShardNotFoundError,
    StoreError,
    UntrustedSourceError,
)
from atdata_lab.stores.local import TEMP_MARK
from atdata_lab.urls import TRUST_OPTION, TrustPolicy
from tests.reliability.hostile import (
    FakePDS,
    LoopbackServer,
    Publisher,
    Response,
    file_host,
    http_storage,
    huge_host,
    raw_cid,
    s3_host,
    schema_value,
    sha256,
    shard_bytes,
    tree,
)
from tests.reliability.support import PYTHON, REPO_ROOT, child_env, samples, temp_files

pytestmark = pytest.mark.sandbox

HOME = "atdata-home"
# the read path may write only into the cache, and its schema cache into the index database
OUTSIDE_CACHE_SKIP = (f"{HOME}/cache", f"{HOME}/index.db", f"{HOME}/index.db-wal", f"{HOME}/index.db-shm")
ROWS: dict[str, list[tuple]] = {}


@pytest.fixture
def victim(sandbox, atdata_home, monkeypatch):
    """A user with a dataset of their own, logged in to the sandbox (its env: PDS URL, trusted PDS host)."""
    account = sandbox.create_account()
    for k, v in sandbox.env(account).items():
        monkeypatch.setenv(k, v)
    for k in (
        "ATDATA_ALLOW_LOCAL_URLS",
        "ATDATA_TRUSTED_DIDS",
        "ATDATA_S3_CREDENTIAL_ENDPOINTS",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(k, raising=False)
    client = Atmosphere.login(account.handle, account.password)
    index = atdata.Index(atmosphere=client)
    original = samples(30, dim=16, seed=42)
    entry = index.write(original, name="precious", maxcount=30, progress=False)
    ns = SimpleNamespace(
        client=client,
        index=index,
        entry=entry,
        home=atdata_home,
        original=original,
        precious=Path(entry.data_urls[0]),
        did=account.did,
        handle=account.handle,
    )
    yield ns
    client.close()


@pytest.fixture
def attacker(sandbox):
    return Publisher(sandbox)


def _outside_cache(tmp_path: Path) -> dict[str, str]:
    return tree(tmp_path, skip=OUTSIDE_CACHE_SKIP)


def _cache_is_clean(home: Path) -> list[str]:
    """Problems with the cache: a file whose name is not what its bytes hash to, or a leftover temp file."""
    problems = []
    for kind in ("blobs", "shards"):
        folder = home / "cache" / kind
        if not folder.exists():
            continue
        for p in folder.iterdir():
            if TEMP_MARK in p.name:
                problems.append(f"temp file left: {p}")
                continue
            digest = sha256(p.read_bytes())
            want = raw_cid(p.read_bytes()) + ".tar" if kind == "blobs" else digest + ".tar"
            if p.name != want:
                problems.append(f"{p} does not hold what its name says")
    return problems


def _precious_intact(victim) -> bool:
    got = list(victim.index.dataset("precious").ordered())
    return len(got) == len(victim.original) and all(
        np.array_equal(a.features, b.features) and a.label == b.label for a, b in zip(got, victim.original)
    )


def _count_blob_requests(client: Atmosphere) -> list[str]:
    """Wrap the client's anonymous HTTP client: every getBlob URL it is asked to stream."""
    seen: list[str] = []
    stream = client._http.stream

    def counting(method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if "getBlob" in str(url):
            seen.append(str(url))
        return stream(method, url, *args, **kwargs)

    client._http.stream = counting  # type: ignore[method-assign]
    return seen


def _raises(call: Any) -> BaseException | None:
    try:
        call()
    except Exception as e:  # noqa: BLE001 - judged by the caller
        return e
    return None


# ------------------------------------------------------------------------------------------------
# 1. path traversal through a blob CID
# ------------------------------------------------------------------------------------------------


def test_1_blob_cids_from_records_never_name_a_path_outside_the_cache(
    victim, attacker, tmp_path, report_table
):
    """Real sandbox PDS: it stores the attacker's "blob references" as plain JSON (a legacy ``cid`` or a
    ``$link`` that is no CID). Each is refused as not a verifiable CID before any blob request; the
    victim's own shard and every file outside the cache are untouched, and no folder is created."""
    p = victim.precious
    precious_cid = raw_cid(p.read_bytes())
    bad = [
        ("absolute path", str(p.with_suffix(""))),
        ("../ relative path", "../../data/precious/precious-000000"),
        ("../ behind a CID", f"{precious_cid}/../../../data/precious/precious-000000"),
        ("trailing newline", precious_cid + "\n"),
        ("dag-cbor CID (bafyrei...)", "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        ("CIDv0 (Qm...)", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
        ("URL-encoded ../", "..%2f..%2fdata%2fprecious%2fprecious-000000"),
    ]
    schema = attacker.schema()
    before = _outside_cache(tmp_path)
    blob_requests = _count_blob_requests(victim.client)
    rows = []
    for what, cid in bad:
        for form in ("legacy cid", "$link"):
            blob = (
                {"cid": cid, "mimeType": "application/x-tar"}
                if form == "legacy cid"
                else {"$type": "blob", "ref": {"$link": cid}, "mimeType": "application/x-tar", "size": 10}
            )
            try:
                uri = attacker.entry({"$type": rec.STORAGE_BLOBS, "blobs": [{"blob": blob}]}, schema)
            except RequestError as e:  # the PDS parses typed blob refs: a real CID must be uploaded first
                rows.append((what, form, f"the PDS refused the record ({e.status})", "yes"))
                continue
            err = _raises(lambda uri=uri: atdata.load_dataset(uri, split="train", index=victim.index))
            ok = isinstance(err, RecordValidationError) and "CID" in str(err)
            rows.append((what, form, type(err).__name__, "yes" if ok else "NO"))
            assert ok, f"{what} ({form}): {err!r}"
    assert blob_requests == []  # not one getBlob request
    assert _outside_cache(tmp_path) == before
    assert not _cache_is_clean(victim.home) and _precious_intact(victim)
    ROWS["1"] = rows
    report_table(
        "1. Blob CIDs that are paths (real PDS): refused before any blob request",
        ("CID in the record", "form", "error", "refused, nothing touched"),
        rows,
        note="getBlob requests: 0; files outside the cache changed: 0 (a well-formed CID is refused by "
        "the PDS itself unless uploaded: the forged-bytes test below uses a stand-in PDS)",
    )


def test_1_forged_blob_bytes_are_never_kept_and_never_replace_anything(victim, tmp_path, report_table):
    """Stand-in PDS (a real PDS only serves bytes that match their CID): it serves the attacker's tar for
    the CID of the victim's own shard. The bytes are checked against the CID while they download and
    nothing is kept; a CID with another codec is refused before any request; the victim's local
    dataset still reads its own values."""
    evil = shard_bytes(tmp_path, n=5, seed=9, name="evil")
    precious_cid = raw_cid(victim.precious.read_bytes())
    did = "did:plc:attackerattackerattacker"
    before = _outside_cache(tmp_path)
    with FakePDS(did) as pds:
        pds.records[(rec.SCHEMA_NSID, "s")] = schema_value()
        schema_uri = f"at://{did}/{rec.SCHEMA_NSID}/s"
        cases = {
            "e1": ("CID of the victim's shard, attacker's bytes served", precious_cid, BlobMismatchError, 1),
            "e2": (
                "dag-cbor CID of the attacker's bytes",
                "bafyrei" + raw_cid(evil)[7:],
                RecordValidationError,
                0,
            ),
            "ok": ("the attacker's own correct CID (control)", raw_cid(evil), None, 1),
        }
        pds.blobs[precious_cid] = evil
        pds.blobs[raw_cid(evil)] = evil
        pds.blobs["bafyrei" + raw_cid(evil)[7:]] = evil
        rows = []
        for rkey, (what, cid, want, gets) in cases.items():
            pds.records[(rec.ENTRY_NSID, rkey)] = {
                "$type": rec.ENTRY_NSID,
                "name": rkey,
                "schemaRef": schema_uri,
                "createdAt": "2026-01-01T00:00:00Z",
                "storage": {"$type": rec.STORAGE_BLOBS, "blobs": [{"blob": {"cid": cid, "mimeType": "x/y"}}]},
            }
            reader = atdata.Index(atmosphere=Atmosphere(pds.url))
            n0 = pds.server.count("getBlob")
            err = _raises(
                lambda rkey=rkey, reader=reader: len(
                    atdata.load_dataset(f"at://{did}/{rec.ENTRY_NSID}/{rkey}", split="train", index=reader)
                )
            )
            sent = pds.server.count("getBlob") - n0
            ok = (err is None if want is None else isinstance(err, want)) and sent == gets
            rows.append((what, type(err).__name__ if err else "loaded", sent, "yes" if ok else "NO"))
            assert ok, f"{what}: {err!r}, {sent} getBlob"
    assert _outside_cache(tmp_path) == before
    assert not _cache_is_clean(victim.home)
    assert sorted(p.name for p in (victim.home / "cache" / "blobs").iterdir()) == [raw_cid(evil) + ".tar"]
    assert _precious_intact(victim)
    report_table(
        "1. Forged blob bytes (stand-in PDS): checked against the CID before use",
        ("record", "result", "getBlob requests", "as required"),
        rows,
        note="cache afterwards: only the control's verified blob; files outside the cache changed: 0",
    )


# ------------------------------------------------------------------------------------------------
# 2. untrusted URLs
# ------------------------------------------------------------------------------------------------


def test_2_records_cannot_point_at_local_files_or_internal_hosts(victim, attacker, tmp_path, report_table):
    """Real sandbox PDS for the records; a counting server on 127.0.0.1 for the loopback targets. Every
    location is refused by load_dataset and by verify before any connection, with an error naming the
    record, the URL and the setting that allows it; the setting does allow it."""
    good = shard_bytes(tmp_path)
    with LoopbackServer(file_host({"/x.tar": good})) as srv:
        port = srv.port
        targets = [
            ("file:// system file", "file:///etc/passwd"),
            ("the victim's shard, bare path", str(victim.precious)),
            ("the victim's shard, file://", f"file://{victim.precious}"),
            ("loopback address", f"http://127.0.0.1:{port}/x.tar"),
            ("loopback by name", f"http://localhost:{port}/x.tar"),
            ("IPv6 loopback", f"http://[::1]:{port}/x.tar"),
            ("IPv4-mapped IPv6 loopback", f"http://[::ffff:127.0.0.1]:{port}/x.tar"),
            ("link-local (cloud metadata)", "http://169.254.169.254/latest/meta-data/"),
            ("private network", "https://10.1.2.3/x.tar"),
            ("unspecified", f"http://0.0.0.0:{port}/x.tar"),
            ("multicast", "http://224.0.0.1/x.tar"),
            ("decimal loopback", f"http://2130706433:{port}/x.tar"),
            ("chained fsspec", f"simplecache::http://127.0.0.1:{port}/x.tar"),
            ("local://", f"local://{victim.precious}"),
            ("memory://", "memory://x.tar"),
            ("other scheme", "ftp://example.org/x.tar"),
        ]
        schema = attacker.schema()
        before = _outside_cache(tmp_path)
        rows = []
        for what, url in targets:
            uri = attacker.entry(http_storage([url], [sha256(good)]), schema)
            err = _raises(lambda uri=uri: list(atdata.load_dataset(uri, split="train", index=victim.index)))
            report = victim.index.verify(uri)
            msg = str(err)
            names = (
                uri in msg
                and (url in msg or repr(url)[1:-1] in msg)
                and ("ATDATA_ALLOW_LOCAL_URLS" in msg or "trust=True" in msg or "ATDATA_TRUSTED_HOSTS" in msg)
            )
            ok = (
                isinstance(err, UntrustedSourceError)
                and isinstance(err, PermissionError)
                and names
                and not report.ok
            )
            rows.append(
                (what, type(err).__name__, "yes" if names else "NO", "no" if not report.ok else "YES")
            )
            assert ok, f"{what}: {err!r}; verify ok={report.ok}"
        assert srv.count() == 0, srv.requests  # not one request reached the loopback server
        assert _outside_cache(tmp_path) == before
        # the settings that allow them do allow them
        uri = attacker.entry(http_storage([f"http://127.0.0.1:{port}/x.tar"], [sha256(good)]), schema)
        allowed = atdata.load_dataset(
            uri, split="train", index=victim.index, trust=TrustPolicy(trusted_hosts={srv.host})
        )
        assert len(list(allowed)) == 20 and srv.count("/x.tar") >= 1
        local_uri = attacker.entry(
            http_storage([str(victim.precious)], [victim.entry.shard_checksums[0]]), schema
        )
        assert (
            len(
                atdata.load_dataset(
                    local_uri, split="train", index=victim.index, trust=TrustPolicy(allow_local=True)
                )
            )
            == 30
        )
    ROWS["2"] = rows
    report_table(
        "2. Shard URLs in someone else's record (real PDS): refused by load_dataset and verify",
        ("target", "error", "names record, URL, setting", "verify ok"),
        rows,
        note="requests that reached the loopback server: 0; files outside the cache changed: 0; "
        "trusted_hosts= / allow_local= then load them",
    )


def test_2_a_host_whose_address_changes_after_the_check_is_refused_at_connect(
    victim, attacker, tmp_path, monkeypatch
):
    """Stand-in DNS (no DNS server here): the resolver answers a public address when the record is
    checked and 127.0.0.1 when the connection is made. The connection re-checks the address it is
    about to use and refuses; nothing reaches the loopback server."""
    good = shard_bytes(tmp_path)
    with LoopbackServer(file_host({"/x.tar": good})) as srv:
        real = urls._getaddrinfo
        answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", srv.port))]])

        def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "rebind.example":
                return next(answers, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", srv.port))])
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(urls, "_getaddrinfo", rebinding)
        uri = attacker.entry(http_storage([f"http://rebind.example:{srv.port}/x.tar"], [sha256(good)]))
        ds = atdata.load_dataset(uri, split="train", index=victim.index)  # checked: a public address
        got: list = []
        err = _raises(lambda: got.extend(ds))
        assert isinstance(err, UntrustedSourceError) and "127.0.0.1" in str(err), repr(err)
        assert got == [] and srv.count() == 0


def test_2_credentials_never_reach_an_endpoint_the_record_chose(
    victim, attacker, tmp_path, monkeypatch, report_table
):
    """Stand-in S3 endpoint (an endpoint chosen by a record, to count ``Authorization`` headers). The
    reader has AWS credentials in its environment; a record naming an endpoint the reader did not
    configure is read anonymously (no signature reaches it). Configuring it as a credential endpoint
    sends them (the counter works)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAVICTIMVICTIMVICT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "victim-secret-victim-secret-victim-secret")
    a, b = shard_bytes(tmp_path, seed=1, name="a"), shard_bytes(tmp_path, seed=2, name="b")
    with LoopbackServer(s3_host({"/bucket/a.tar": a, "/bucket/b.tar": b})) as s3:

        def storage(key: str, data: bytes) -> dict[str, Any]:
            return {
                "$type": rec.STORAGE_S3,
                "bucket": "bucket",
                "endpoint": s3.url,
                "shards": [{"key": key, "checksum": {"algorithm": "sha256", "digest": sha256(data)}}],
            }

        schema = attacker.schema()
        uri_a, uri_b = (
            attacker.entry(storage("a.tar", a), schema),
            attacker.entry(storage("b.tar", b), schema),
        )
        refused = _raises(lambda: atdata.load_dataset(uri_a, split="train", index=victim.index))
        assert isinstance(refused, UntrustedSourceError)  # a loopback endpoint: refused outright by default
        assert s3.count() == 0
        ds = atdata.load_dataset(
            uri_a, split="train", index=victim.index, trust=TrustPolicy(trusted_hosts={s3.host})
        )
        assert ds.storage_options.get("anon") is True and "key" not in ds.storage_options
        assert len(list(ds)) == 20
        anonymous = (s3.count(), s3.authorized())
        assert anonymous[0] >= 1 and anonymous[1] == 0, s3.requests
        signed = atdata.load_dataset(
            uri_b,
            split="train",
            index=victim.index,
            trust=TrustPolicy(trusted_hosts={s3.host}, credential_endpoints={s3.url}),
        )
        assert len(list(signed)) == 20 and s3.authorized() >= 1  # the control: configured, so signed
    report_table(
        "2. S3 credentials and a record's endpoint (stand-in endpoint counting Authorization)",
        ("endpoint", "requests", "with Authorization"),
        [
            ("chosen by the record (not configured)", anonymous[0], anonymous[1]),
            ("configured as a credential endpoint (control)", s3.count() - anonymous[0], s3.authorized()),
        ],
    )


# ------------------------------------------------------------------------------------------------
# 3. unbounded reads
# ------------------------------------------------------------------------------------------------


def _child(
    scenario: str, args: dict[str, Any], *, headroom_mb: int = 256, fsize_kb: int = 0, timeout: float = 300
) -> dict[str, Any]:
    cmd = [
        PYTHON,
        "-m",
        "tests.reliability.hostile_child",
        scenario,
        json.dumps(args),
        "--headroom-mb",
        str(headroom_mb),
    ]
    if fsize_kb:
        cmd += ["--fsize-kb", str(fsize_kb)]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_3_hostile_hosts_cannot_make_a_read_hold_more_than_a_block(tmp_path, report_table):
    """Stand-ins: a data host that ignores ``Range`` and sends a 1.25 GB body; a PDS that hands out a
    fresh cursor (and a full page) forever, one that repeats its cursor, one that answers a 1 GB
    record and one that answers JSON nested 200,000 deep. Each read runs in a child capped at its
    size after imports + 256 MiB."""
    rows = []
    with LoopbackServer(huge_host(1_250_000_000)) as big:
        r = _child("ignore-range", {"url": f"{big.url}/x.tar", "trusted_hosts": [big.host]})
        assert r["error"] is None and r["range_bytes"] == 1 << 20 and r["block_bytes"] == urls.REMOTE_BLOCK, r
        rows.append(
            (
                "host ignoring Range, 1.25 GB body: 1 MiB read at 64 MiB, one 32 MiB block",
                "read, cut",
                r["peak_rss_mb"],
                r["address_space_cap_mb"],
            )
        )
    with LoopbackServer(huge_host(300_000_000)) as big:
        r = _child(
            "spool-bad-shard", {"url": f"{big.url}/x.tar", "sha256": "ab" * 32, "trusted_hosts": [big.host]}
        )
        assert r["error"] == "ShardError" and r["samples_returned"] == 0, r
        rows.append(
            (
                "checksummed shard from that host (300 MB, wrong bytes)",
                r["error"],
                r["peak_rss_mb"],
                r["address_space_cap_mb"],
            )
        )
    did = "did:plc:attackerattackerattacker"
    for mode, words in (("endless", "1000 pages"), ("repeat", "twice")):
        with FakePDS(did, cursor=mode) as pds:
            t0 = time.monotonic()
            r = _child("list-forever", {"pds": pds.url, "did": did})
            n = pds.server.count("listRecords")
            assert r["error"] == "ResponseTooLargeError" and words in r["message"], r
            assert n == (1000 if mode == "endless" else 2), n
            rows.append(
                (
                    f"listRecords with a {'fresh' if mode == 'endless' else 'repeated'} cursor: {n} requests "
                    f"in {time.monotonic() - t0:.1f} s",
                    r["error"],
                    r["peak_rss_mb"],
                    r["address_space_cap_mb"],
                )
            )
    for what, body in (
        ("a 1 GB getRecord answer", lambda: huge_host(1_000_000_000)(None).body),
        ("JSON nested 200,000 deep", lambda: b'{"value":' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
    ):
        with FakePDS(did, record_body=body) as pds:
            r = _child("get-record", {"pds": pds.url, "did": did})
            assert r["error"] == "ResponseTooLargeError" and "limit" in r["message"], r
            rows.append((what, r["error"], r["peak_rss_mb"], r["address_space_cap_mb"]))
    ROWS["3"] = rows
    report_table(
        "3. Hostile hosts vs bounded reads (stand-ins; each read in a child with RLIMIT_AS)",
        ("server", "result", "peak RSS MiB", "RLIMIT_AS MiB"),
        rows,
    )


def test_3_a_label_listing_that_never_ends_stops_with_an_error(victim, monkeypatch):
    """Stand-in PDS with an endless cursor, reached through ``load_dataset("@did/name")``."""
    did = "did:plc:attackerattackerattacker"
    with FakePDS(did, cursor="endless") as pds:
        reader = atdata.Index(atmosphere=Atmosphere(pds.url))
        err = _raises(lambda: atdata.load_dataset(f"@{did}/gift", index=reader))
        assert isinstance(err, ResponseTooLargeError) and isinstance(err, ValueError), repr(err)
        assert pds.server.count("listRecords") == 1000


# ------------------------------------------------------------------------------------------------
# 4. bytes used before they are checked
# ------------------------------------------------------------------------------------------------


def _every_read(ds: atdata.Dataset) -> tuple[list[tuple[str, BaseException | None]], int]:
    """Every way of reading a dataset: (how, error) and how many samples came back in total."""
    got: list = []
    ways = {
        "ordered": lambda: got.extend(ds.ordered()),
        "ordered(batch_size=4)": lambda: got.extend(b for b in ds.ordered(batch_size=4)),
        "shuffled": lambda: got.extend(ds.shuffled(buffer=4, seed=0)),
        "head": lambda: got.extend(ds.head(3)),
        "ds[k]": lambda: got.append(ds[7]),
        "len": lambda: len(ds),
    }
    return [(how, _raises(call)) for how, call in ways.items()], len(got)


def test_4_no_sample_of_a_swapped_shard_is_ever_returned(victim, attacker, tmp_path, report_table):
    """Real PDS for the record; a loopback host (trusted for this read) that swaps the shard's bytes
    after publication, as a compromised host would (a stand-in: nothing real swaps bytes). Every way
    of reading fails with ShardError before a single sample; with the right bytes back, ``ds[k]`` and
    ``len()`` verify the shard once (one download) and read from the verified copy."""
    good = shard_bytes(tmp_path, n=20, seed=1, name="good")
    swapped = shard_bytes(tmp_path, n=20, seed=2, name="swapped")
    files = {"/s.tar": swapped}
    with LoopbackServer(file_host(files)) as host:
        uri = attacker.entry(http_storage([f"{host.url}/s.tar"], [sha256(good)]))
        trust = TrustPolicy(trusted_hosts={host.host})
        ds = atdata.load_dataset(uri, split="train", index=victim.index, trust=trust)
        results, returned = _every_read(ds)
        rows = [(how, type(e).__name__ if e else "returned samples") for how, e in results]
        assert returned == 0 and all(isinstance(e, ShardError) and "sha256" in str(e) for _, e in results), (
            rows
        )
        assert not (victim.home / "cache" / "shards" / f"{sha256(good)}.tar").exists()
        assert not _cache_is_clean(victim.home)
        files["/s.tar"] = good
        n0 = host.count("/s.tar")
        ds = atdata.load_dataset(uri, split="train", index=victim.index, trust=trust)
        assert ds[7].label == samples(20, dim=16, seed=1)[7].label and len(ds) == 20 and ds[3].label == 3
        assert len(list(ds.ordered())) == 20
        full_gets = host.count("/s.tar") - n0
        assert full_gets == 1, host.requests  # verified once, then read from the verified copy
    ROWS["4"] = rows
    report_table(
        "4. A host swaps a published shard's bytes: every read fails before any sample",
        ("read", "result"),
        rows,
        note=f"samples returned: 0; with the right bytes: ds[7], len(), ds[3] and a full pass cost "
        f"{full_gets} download of the shard",
    )


@pytest.mark.s3
def test_4_s3_object_overwritten_after_publication_yields_no_sample(
    victim, attacker, tmp_path, s3_server, s3_bucket, monkeypatch, report_table
):
    """Real SeaweedFS and real PDS: the publisher overwrites the object after publishing its checksum.
    The reader (who configured this endpoint as a credential endpoint) gets ShardError before any sample."""
    good = shard_bytes(tmp_path, n=20, seed=1, name="good")
    fs = s3_server.fs()
    fs.pipe_file(f"{s3_bucket}/pub/s.tar", good)
    storage = {
        "$type": rec.STORAGE_S3,
        "bucket": s3_bucket,
        "endpoint": s3_server.endpoint_url,
        "shards": [{"key": "pub/s.tar", "checksum": {"algorithm": "sha256", "digest": sha256(good)}}],
    }
    uri = attacker.entry(storage)
    fs.pipe_file(f"{s3_bucket}/pub/s.tar", shard_bytes(tmp_path, n=20, seed=3, name="other"))
    host = s3_server.endpoint_url.split("://", 1)[1].rstrip("/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    trust = TrustPolicy(trusted_hosts={host}, credential_endpoints={s3_server.endpoint_url})
    ds = atdata.load_dataset(uri, split="train", index=victim.index, trust=trust)
    results, returned = _every_read(ds)
    assert returned == 0 and all(isinstance(e, ShardError) for _, e in results), results
    report_table(
        "4. S3 object overwritten after publication (real SeaweedFS)",
        ("read", "result"),
        [(how, type(e).__name__) for how, e in results],
        note="samples returned: 0",
    )


# ------------------------------------------------------------------------------------------------
# 5. errors outside the hierarchy
# ------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_5_every_failure_is_a_project_error_that_is_also_the_builtin(
    victim, attacker, tmp_path, report_table
):
    """Real PDS records and real files; loopback hosts answer 404 and 403 (stand-ins for a public host
    that does), a closed port stands for a host that is down."""
    good = shard_bytes(tmp_path)
    schema = attacker.schema()

    def deny(req: Any) -> Response:
        return Response(403, body=b"forbidden")

    rows = []
    problems = []

    def check(what: str, call: Any, builtin: type, words: list[str]) -> None:
        err = _raises(call)
        ok = (
            isinstance(err, AtdataLabError) and isinstance(err, builtin) and all(w in str(err) for w in words)
        )
        rows.append((what, type(err).__name__, builtin.__name__, "yes" if ok else "NO"))
        if not ok:
            problems.append(f"{what}: {err!r}")

    with LoopbackServer(file_host({})) as missing, LoopbackServer(deny) as denied:
        down = _closed_port()
        trust = TrustPolicy(trusted_hosts={missing.host, denied.host, f"127.0.0.1:{down}"})
        for what, url, builtin in (
            ("HTTP 404", f"{missing.url}/gone.tar", FileNotFoundError),
            ("HTTP 403", f"{denied.url}/secret.tar", PermissionError),
            ("host down", f"http://127.0.0.1:{down}/x.tar", ConnectionError),
        ):
            uri = attacker.entry(http_storage([url], [sha256(good)]), schema)
            check(
                what,
                lambda uri=uri: list(
                    atdata.load_dataset(uri, split="train", index=victim.index, trust=trust)
                ),
                builtin,
                [url],
            )
            check(
                what + " (no checksum: read directly)",
                lambda url=url: list(atdata.Dataset(url, storage_options={TRUST_OPTION: trust})),
                builtin,
                [url],
            )
    own = victim.index.promote_entry("precious", progress=False)
    ds = atdata.load_dataset(own, split="train", index=victim.index)
    first = ds[0]
    assert first.label == 0
    moved = victim.precious.with_name("moved.tar")
    victim.precious.rename(moved)
    try:
        check(
            "ds[k] on a deleted shard (published dataset)",
            lambda: ds[5],
            FileNotFoundError,
            [str(victim.precious)],
        )
        local = victim.index.dataset("precious")
        check(
            "ds[k] on a deleted shard (local entry)",
            lambda: local[5],
            FileNotFoundError,
            [str(victim.precious)],
        )
    finally:
        moved.rename(victim.precious)
    uri = attacker.entry(
        http_storage(["https://example.org/x.tar"]), schema, metadata={"split": ["train", "x"]}
    )
    check(
        "metadata.split is a list",
        lambda: atdata.load_dataset(uri, index=victim.index),
        ValueError,
        ["metadata.split"],
    )
    for name in ("__class__", "packed", "as_wds", "__dict__"):
        local_schema = {
            "name": "Evil",
            "version": "1.0.0",
            "fields": [
                {
                    "name": name,
                    "fieldType": {"$type": "local#primitive", "primitive": "int"},
                    "optional": False,
                }
            ],
        }
        evil = attacker.put((rec.SCHEMA_NSID, rec.schema_record(local_schema)))[0]
        uri = attacker.entry(http_storage(["https://example.org/x.tar"]), evil)
        check(
            f"schema field named {name}",
            lambda uri=uri: atdata.load_dataset(uri, index=victim.index),
            ValueError,
            [name],
        )
        assert isinstance(_raises(lambda uri=uri: atdata.load_dataset(uri, index=victim.index)), SchemaError)
    did = "did:plc:attackerattackerattacker"
    with FakePDS(did, record_body=lambda: b'{"value":' + b"[" * 200_000 + b"]" * 200_000 + b"}") as pds:
        reader = atdata.Index(atmosphere=Atmosphere(pds.url))
        check(
            "200,000-deep JSON from a PDS (stand-in)",
            lambda: atdata.load_dataset(f"at://{did}/{rec.ENTRY_NSID}/3kabcdefghijk", index=reader),
            ValueError,
            ["nested"],
        )
    # disk full: the index database (SQLite's own "database or disk is full", by capping its pages)
    conn = victim.index.provider.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    check(
        "disk full: the index database",
        lambda: victim.index.write(samples(400, dim=64), name="more", progress=False),
        OSError,
        ["free disk space"],
    )
    conn.execute("PRAGMA max_page_count = 1073741823")
    ROWS["5"] = rows
    report_table(
        "5. Failures are AtdataLabError subclasses that are also the builtin",
        ("failure", "error", "also a", "ok"),
        rows,
    )
    assert not problems, "\n".join(problems)


def test_5_a_full_disk_while_caching_is_a_store_error(tmp_path, report_table):
    """A child whose file size limit is 64 KiB (``RLIMIT_FSIZE``: the kernel refuses the write, as a full
    disk does) caches a 400 KiB shard from a loopback host (a stand-in for a public one)."""
    good = shard_bytes(tmp_path, n=200, seed=5)
    assert len(good) > 100_000
    with LoopbackServer(file_host({"/s.tar": good})) as host:
        r = _child(
            "fetch-shard",
            {"url": f"{host.url}/s.tar", "sha256": sha256(good), "trusted_hosts": [host.host]},
            fsize_kb=64,
        )
    assert r["error"] == "StoreError" and "OSError" in r["bases"] and "AtdataLabError" in r["bases"], r
    assert r["samples_returned"] == 0
    report_table(
        "5. Disk full while caching a shard (RLIMIT_FSIZE child)",
        ("error", "bases", "message"),
        [(r["error"], ", ".join(r["bases"][1:4]), r["message"][:90])],
    )


# ------------------------------------------------------------------------------------------------
# 6. validators and trailing newlines
# ------------------------------------------------------------------------------------------------


def test_6_trailing_newlines_are_refused_before_any_request_and_create_nothing(victim, report_table):
    client, index = victim.client, victim.index
    data = victim.home / "data"
    before = sorted(os.listdir(data))
    calls = [
        ("is_valid_rkey('abc\\n')", lambda: rec.is_valid_rkey("abc\n") and 1 / 0),
        ("dataset name 'ok\\n'", lambda: index.write(samples(2), name="ok\n", progress=False)),
        ("get_record rkey 'abc\\n'", lambda: client.get_record(rec.ENTRY_NSID, "abc\n")),
        ("get_record collection with '\\n'", lambda: client.get_record(rec.ENTRY_NSID + "\n", "abc")),
        (
            "get_record repo 'did...\\n'",
            lambda: client.get_record(rec.ENTRY_NSID, "abc", repo=victim.did + "\n"),
        ),
        ("list_records collection with '\\n'", lambda: client.list_all_records(rec.ENTRY_NSID + "\n")),
        (
            "load_dataset('@handle\\n/name')",
            lambda: atdata.load_dataset(f"@{victim.handle}\n/x", index=index),
        ),
        (
            "load_dataset(at://.../rkey\\n)",
            lambda: atdata.load_dataset(f"at://{victim.did}/{rec.ENTRY_NSID}/abc\n", index=index),
        ),
        (
            "load_dataset(at://did\\n/...)",
            lambda: atdata.load_dataset(f"at://{victim.did}\n/{rec.ENTRY_NSID}/abc", index=index),
        ),
        ("resolve_handle('h.test\\n')", lambda: client.resolve_handle(victim.handle + "\n")),
        (
            "download_blob cid with '\\n'",
            lambda: client.download_blob(victim.did, raw_cid(b"x") + "\n", victim.home / "cache" / "x"),
        ),
    ]
    rows, problems = [], []
    for what, call in calls:
        client.round_trips = 0
        err = _raises(call)
        ok = (
            err is None
            if what.startswith("is_valid")
            else (isinstance(err, AtdataLabError) and isinstance(err, ValueError))
        )
        ok = ok and client.round_trips == 0
        rows.append(
            (what, type(err).__name__ if err else "False", client.round_trips, "ok" if ok else "FAIL")
        )
        if not ok:
            problems.append(f"{what}: {err!r}, {client.round_trips} requests")
    assert sorted(os.listdir(data)) == before  # no folder 'ok\n'
    assert not (victim.home / "cache" / "x").exists()
    ROWS["6"] = rows
    report_table(
        "6. Trailing newlines: refused before any request", ("input", "error", "requests", "result"), rows
    )
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------------
# 7. temp files of killed writers
# ------------------------------------------------------------------------------------------------


def test_7_a_killed_writers_temp_files_are_swept_by_the_next_write_of_any_name(tmp_path, report_table):
    """A real process writing ``big000`` is killed (SIGKILL) with 4 shards staged and a 5th open; the next
    ``index.write`` of a *different* name on the same store removes every one of its temp files."""
    data = tmp_path / "data"
    cfg = {
        "db": str(tmp_path / "i.db"),
        "data": str(data),
        "count": 1,
        "prefix": "big",
        "samples": 3000,
        "maxcount": 500,
        "dim": 256,
        "kill_at_sample": 2048,
    }
    proc = subprocess.run(
        [PYTHON, "-m", "tests.reliability.write_child", json.dumps(cfg)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stdout + proc.stderr
    left = temp_files(data)
    size = sum(Path(p).stat().st_size for p in left)
    assert len(left) >= 4
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(data))
    index.write(samples(10), name="something-else", progress=False)
    after = temp_files(data)
    report_table(
        "7. Temp files of a writer killed mid-write, then a write of another name",
        ("temp files after the kill", "bytes", "after writing another name"),
        [(len(left), f"{size:,}", len(after))],
    )
    assert after == []
    shutil.rmtree(data / "big000", ignore_errors=True)


def test_blob_cache_paths_come_from_the_parsed_cid_only(atdata_home):
    """The cache path is built from the parsed CID's canonical text and is always a direct child of the
    cache folder."""
    from atdata_lab.cache import blob_path, shard_path
    from atdata_lab.cid import parse_blob_cid

    cid = raw_cid(b"hello")
    p = blob_path(parse_blob_cid(cid.upper()))
    assert p == atdata_home / "cache" / "blobs" / f"{cid}.tar"
    for bad in ("../x", "/etc/passwd", cid + "/../../x"):
        with pytest.raises(RecordValidationError):
            parse_blob_cid(bad)
    with pytest.raises(ShardError):
        shard_path("../" + "a" * 61)
    assert isinstance(BlobCID(b"\0" * 32), BlobCID)
    for err in (
        ShardNotFoundError("x"),
        RemoteAccessDeniedError("x"),
        RemoteUnavailableError("x"),
        StoreError("x"),
        UntrustedSourceError("x"),
    ):
        assert isinstance(err, AtdataLabError)
