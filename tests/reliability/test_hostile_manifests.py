"""A published dataset's manifests are untrusted like the rest of its record (issue 16).

The attacker is a second account on the real sandbox PDS that writes its records with raw XRPC (no
local validation: the PDS stores any JSON for these collections, and serves any blob a record
references); it is a stand-in for a hostile publisher, which a test cannot summon on demand. Its
shards are served by a loopback host that counts every request. Each case forges one thing about
the record's ``manifests``: a list that is not one per shard, a blob whose declared size is over
the limit, a blob larger than it declares, a CID that cannot be verified, and a Parquet table whose
per-sample sha256 column lies. Every case must end in a clear error or a warning, and no sample that
does not match what the record promises is ever returned.
"""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import records as rec
from atdata_lab.errors import AtdataLabWarning, ManifestError, ManifestNotFoundError, ShardError
from atdata_lab.promotion.published import verify_published
from atdata_lab.urls import TrustPolicy
from tests.reliability.hostile import LoopbackServer, Publisher, file_host, http_storage, sha256
from tests.reliability.support import ReliabilitySample, samples

pytestmark = pytest.mark.sandbox
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def published_files(tmp: Path, n: int, name: str) -> list[tuple[bytes, bytes, bytes]]:
    """Shards of ``n`` samples each (two shards), with their manifests: ``(tar, json, parquet)``."""
    ds = atdata.write_samples(samples(2 * n, dim=8, seed=1), tmp / name / "s", maxcount=n, manifest=True)
    out = []
    for url in ds.urls:
        base = url[:-4]
        out.append(
            (
                Path(url).read_bytes(),
                Path(base + ".manifest.json").read_bytes(),
                Path(base + ".manifest.parquet").read_bytes(),
            )
        )
    return out


def upload(attacker: Publisher, data: bytes, mime: str) -> dict[str, Any]:
    client = attacker._client()
    try:
        return client.upload_blob(io.BytesIO(data), content_type=mime)
    finally:
        client.close()


def manifest_ref(attacker: Publisher, header: bytes, rows: bytes, **header_changes: Any) -> dict[str, Any]:
    h = upload(attacker, header, rec.MANIFEST_HEADER_MIME)
    return {"header": {**h, **header_changes}, "samples": upload(attacker, rows, rec.MANIFEST_ROWS_MIME)}


def lying_rows(rows: bytes, victim_row: int) -> bytes:
    """The same Parquet table, but sample ``victim_row`` claims the sha256 of the next sample."""
    table = pq.read_table(pa.BufferReader(rows))
    digests = table.column("__sha256__").to_pylist()
    digests[victim_row] = digests[victim_row + 1]
    i = table.schema.get_field_index("__sha256__")
    table = table.set_column(i, "__sha256__", pa.array(digests, pa.binary()))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def without_hashes(rows: bytes) -> bytes:
    """The Parquet table without its ``__sha256__`` column, as atdata writes it."""
    table = pq.read_table(pa.BufferReader(rows))
    buf = io.BytesIO()
    pq.write_table(table.drop(["__sha256__"]), buf)
    return buf.getvalue()


def shards_cached() -> list[str]:
    folder = Path(os.environ["ATDATA_HOME"]) / "cache" / "shards"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def blobs_cached() -> list[str]:
    folder = Path(os.environ["ATDATA_HOME"]) / "cache" / "blobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_forged_manifests_end_in_clear_errors_and_never_in_wrong_samples(
    pds_account, sandbox, tmp_path, report_table, monkeypatch
):
    attacker = Publisher(sandbox)
    files = published_files(tmp_path, 10, "gift")
    served = {f"/s-{i:06d}.tar": tar for i, (tar, _, _) in enumerate(files)}
    rows: list[tuple[str, str, str]] = []
    with LoopbackServer(file_host(served)) as srv:
        trust = TrustPolicy(trusted_hosts={srv.host})
        urls = [f"{srv.url}/s-{i:06d}.tar" for i in range(len(files))]
        storage = http_storage(urls, [sha256(tar) for tar, _, _ in files])
        schema = attacker.schema()
        honest = [manifest_ref(attacker, h, r) for _, h, r in files]

        def load(manifests: Any) -> Any:
            uri = attacker.entry(storage, schema, manifests=manifests)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ds = atdata.load_dataset(uri, ReliabilitySample, split="train", trust=trust)
            return uri, ds, [str(w.message) for w in caught if issubclass(w.category, AtdataLabWarning)]

        # control: the honest manifests answer, and each hit is one ranged request
        uri, ds, warned = load(honest)
        hits = ds.query(where=lambda df: df["label"] == 3)
        assert [h.key for h in hits] == ["000003", "000013"] and warned == []
        srv.requests.clear()
        assert [s.label for s in ds.select(hits)] == [3, 3] and srv.count(".tar") == 2
        rows.append(("honest manifests (control)", "2 hits, 2 range requests", "yes"))

        # control: manifests without the sha256 column (atdata's): the shard of a hit is then
        # downloaded and checked whole before the hit is read (the manifest cannot vouch for a sample)
        (_, h0, r0), (_, h1, r1) = files
        plain = [manifest_ref(attacker, h, without_hashes(r)) for h, r in ((h0, r0), (h1, r1))]
        uri, ds, warned = load(plain)
        hits = ds.query(where=lambda df: df["label"] == 3)
        assert [h.key for h in hits] == ["000003", "000013"]
        assert [s.label for s in ds.select(hits)] == [3, 3]
        assert sorted(shards_cached()) == sorted(f"{sha256(tar)}.tar" for tar, _, _ in files)
        rows.append(("manifests without hashes (atdata's)", "each hit's shard checked whole", "yes"))

        # 1. not one manifest per shard: ignored with a warning, the shards still read
        uri, ds, warned = load(honest[:1])
        assert len(warned) == 1 and uri in warned[0] and "1 manifest(s) for 2 shard(s)" in warned[0]
        with pytest.raises(ManifestNotFoundError):  # nothing beside the shards either
            ds.query(where=lambda df: df["label"] == 3)
        assert len(list(ds)) == 20
        rows.append(("1 manifest for 2 shards", "warning; ignored; ManifestNotFoundError", "yes"))

        # 2. a declared size over the limit: refused before any download
        shutil.rmtree(Path(os.environ["ATDATA_HOME"]) / "cache" / "blobs")
        big = [dict(honest[0], header={**honest[0]["header"], "size": 1 << 40}), honest[1]]
        uri, ds, warned = load(big)
        with pytest.raises(
            ManifestError, match=r"declares 1,099,511,627,776 bytes, more than the 67,108,864"
        ):
            ds.query(where=lambda df: df["label"] == 3)
        assert rec.blob_cid(honest[0]["header"]) + ".tar" not in blobs_cached()  # never fetched
        rows.append(("header declared 1 TiB", "ManifestError before download", "yes"))

        # 3. a blob larger than it declares: the download stops at the declared size (the PDS checks
        # a blob's size against the first record that references it only: a later one may lie)
        _, h0, r0 = files[0]
        padded = manifest_ref(attacker, h0 + b" " * 64, r0)
        attacker.entry(storage, schema, manifests=[padded, honest[1]])
        small = [{**padded, "header": {**padded["header"], "size": len(h0)}}, honest[1]]
        uri, ds, warned = load(small)
        with pytest.raises(ManifestError, match=r"cannot be used: .*over the"):
            ds.query(where=lambda df: df["label"] == 3)
        rows.append(("header larger than declared", "ManifestError (download cut)", "yes"))

        # 4. a CID that cannot be checked against the bytes (dag-cbor, not raw), in atdata's legacy
        # blob form (without a mimeType the PDS stores it as plain JSON)
        bad_cid = "bafyrei" + rec.blob_cid(honest[0]["header"])[7:]
        forged = [{"header": {"cid": bad_cid}}, honest[1]]
        uri, ds, warned = load(forged)
        with pytest.raises(ManifestError, match="not a CIDv1 raw sha2-256|is not a CID"):
            ds.query(where=lambda df: df["label"] == 3)
        rows.append(("unverifiable CID", "ManifestError before download", "yes"))

        # 5. the sha256 column lies about sample 3: its hit is refused, the others are read
        _, h0, r0 = files[0]
        lying = [manifest_ref(attacker, h0, lying_rows(r0, 3)), honest[1]]
        uri, ds, warned = load(lying)
        hits = ds.query(where=lambda df: df["label"] == 3)
        assert [h.key for h in hits] == ["000003", "000013"]
        with pytest.raises(
            ShardError, match="000003.*does not match the sha256 its published manifest records"
        ):
            ds.select(hits)
        assert [s.label for s in ds.select(hits[1:])] == [3]
        np.testing.assert_array_equal(ds.get("000004").features, samples(20, dim=8, seed=1)[4].features)
        monkeypatch.setenv("ATDATA_TRUSTED_HOSTS", f"{os.environ['ATDATA_TRUSTED_HOSTS']},{srv.host}")
        report = verify_published(None, uri)
        check = next(c for c in report.checks if c[0] == "manifests match the shards")
        assert not check[1] and "000003" in check[2] and not report.ok
        rows.append(("sha256 column lies for one sample", "ShardError for that hit only", "yes"))
    report_table(
        "Forged manifests in a published record (real PDS, hostile publisher stand-in)",
        ("forgery", "result", "as required"),
        rows,
        note="no sample that differs from what the record promises was returned",
    )
