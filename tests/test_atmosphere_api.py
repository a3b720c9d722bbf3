"""atdata 0.7's atmosphere API in ``atdata_lab.atmosphere``, against the REAL sandbox PDS.

Each publisher/loader pair round-trips through the PDS; records written by our names are read by
the real atdata 0.7 (a script in its py3.12 venv, logged in to the same sandbox PDS) and records
atdata's publishers write are read by our loaders. Hostile records are real records on the real
PDS, written with a raw ``createRecord`` call: a stand-in by necessity for another publisher's
malformed or forged records (our client refuses to write them, as it validates every record
against its lexicon before sending).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import (
    LEXICON_NAMESPACE,
    AtmosphereIndex,
    AtUri,
    BlobEntry,
    DatasetLoader,
    DatasetMetadata,
    DatasetPublisher,
    DatasetSize,
    HttpShardEntry,
    JsonSchemaFormat,
    LabelLoader,
    LabelPublisher,
    LensLoader,
    LensPublisher,
    LexCodeHash,
    LexCodeReference,
    LexDatasetEntry,
    LexLabelRecord,
    LexLensRecord,
    LexLensVerification,
    LexSchemaRecord,
    PDSBlobStore,
    S3ShardEntry,
    SchemaLoader,
    SchemaPublisher,
    ShardChecksum,
    StorageBlobs,
    StorageHttp,
    StorageS3,
    VerificationLoader,
    VerificationPublisher,
    storage_from_record,
)
from atdata_lab.atmosphere import records as R
from atdata_lab.errors import (
    AtdataLabError,
    RecordNotFoundError,
    RecordValidationError,
    SchemaConflictError,
)
from atdata_lab.lens import Lens
from tests.support import atdata_reference as ref

SHA = "ab" * 32


@atdata.packable
class ApiSample:
    image: NDArray
    label: str
    count: int


@atdata.packable
class ApiView:
    label: str


def samples(n: int) -> list[ApiSample]:
    return [ApiSample(image=np.full((2, 3), i, dtype=np.float32), label=f"s{i}", count=i) for i in range(n)]


def assert_same(got: list, n: int) -> None:
    assert [s.label for s in got] == [f"s{i}" for i in range(n)]
    assert all(np.array_equal(s.image, np.full((2, 3), i, dtype=np.float32)) for i, s in enumerate(got))


@pytest.fixture
def client(sandbox, pds_account):
    return atdata.atmosphere.Atmosphere.login(
        pds_account.handle, pds_account.password, pds_url=sandbox.pds_url
    )


def raw_create(client, collection: str, record: dict) -> str:
    """Write a record the way a hostile or buggy publisher could: straight to the PDS, no local checks."""
    out = client._call(
        "procedure",
        "com.atproto.repo.createRecord",
        body={"repo": client.did, "collection": collection, "record": record, "validate": False},
        op="raw create",
    )
    return out["uri"]


# --- pure: AtUri and the typed mirrors ---------------------------------------------------------


def test_at_uri_parts_round_trip_and_rejects_malformed():
    u = AtUri.parse("at://did:plc:abc123/science.alt.dataset.schema/xyz")
    assert (u.authority, u.collection, u.rkey) == ("did:plc:abc123", "science.alt.dataset.schema", "xyz")
    assert str(u) == "at://did:plc:abc123/science.alt.dataset.schema/xyz"
    assert AtUri("did:plc:abc123", "science.alt.dataset.entry", "3k") == AtUri.parse(
        "at://did:plc:abc123/science.alt.dataset.entry/3k"
    )
    assert LEXICON_NAMESPACE == "science.alt.dataset"
    for bad in (
        "https://did:plc:abc/a.b/c",
        "at://",
        "at:///a.b/c",
        "at://did:plc:abc/a.b/c/d",
        "at://did:plc:abc/a.b/has space",
        "at://not a handle/a.b/c",
        "at://did:plc:abc/bad collection/c",
        "at://did:plc:abc//c",
        None,
    ):
        with pytest.raises(RecordValidationError) as e:
            AtUri.parse(bad)  # type: ignore[arg-type]
        assert isinstance(e.value, ValueError) and isinstance(e.value, AtdataLabError)
    with pytest.raises(ValueError, match="record key"):
        AtUri("did:plc:abc", "science.alt.dataset.entry", "a/b")


def test_typed_records_round_trip_and_validate():
    code = LexCodeReference("https://github.com/o/r", "a" * 40, "m.py:get", branch="main", language="python")
    schema = LexSchemaRecord(
        "S",
        "1.0.0",
        "jsonSchema",
        JsonSchemaFormat(
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"label": {"type": "string"}},
                "required": ["label"],
            },
            {"ndarrayBytes": "1.0.0"},
        ),
        description="d",
    )
    entry = LexDatasetEntry(
        "e",
        "at://did:plc:abc/science.alt.dataset.schema/s",
        StorageHttp([HttpShardEntry("https://x/a.tar", ShardChecksum("sha256", SHA))]),
        metadata=DatasetMetadata(split="train", custom={"model": "bert"}),
        tags=["a"],
        size=DatasetSize(samples=3, bytes_=10, shards=1),
        license="MIT",
    )
    lens = LexLensRecord("l", entry.schema_ref, entry.schema_ref, code, code, description="x")
    verification = LexLensVerification(
        "at://did:plc:abc/science.alt.dataset.lens/l",
        "bafyreib",
        "signedHash",
        code_hash=LexCodeHash("sha256", SHA),
        proof_ref=code,
    )
    label = LexLabelRecord("mnist", "at://did:plc:abc/science.alt.dataset.entry/e", version="1.0.0")
    for obj in (schema, entry, lens, verification, label):
        record = obj.to_record()
        R.validate_record(record)
        again = type(obj).from_record(json.loads(json.dumps(record)))
        assert again.to_record() == record
    assert entry.metadata is not None and entry.metadata.to_dict() == {"split": "train", "model": "bert"}
    s3 = StorageS3("b", [S3ShardEntry("k.tar", ShardChecksum("sha256", SHA))], endpoint="https://s3.x")
    cid = "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    blobs = StorageBlobs(
        [BlobEntry({"$type": "blob", "ref": {"$link": cid}, "mimeType": "application/x-tar", "size": 1})]
    )
    for storage in (entry.storage, s3, blobs):
        assert storage_from_record(storage.to_record()) == storage
    legacy = storage_from_record(
        {"$type": "science.alt.dataset.storageExternal", "urls": ["https://x/a.tar"]}
    )
    assert legacy == StorageHttp([HttpShardEntry("https://x/a.tar", ShardChecksum("none", ""))])


@pytest.mark.parametrize(
    "cls, record, where",
    [
        (
            LexLabelRecord,
            {"$type": R.LABEL_NSID, "name": "x", "createdAt": "2026-01-01T00:00:00Z"},
            "datasetUri",
        ),
        (
            LexLabelRecord,
            {
                "$type": R.LABEL_NSID,
                "name": "x",
                "datasetUri": "not a uri",
                "createdAt": "2026-01-01T00:00:00Z",
            },
            "datasetUri",
        ),
        (
            LexLensRecord,
            {
                "$type": R.LENS_NSID,
                "name": "l",
                "sourceSchema": "at://did:plc:a/science.alt.dataset.schema/s",
                "targetSchema": "at://did:plc:a/science.alt.dataset.schema/t",
                "getterCode": {"repository": "r", "path": "p"},
                "putterCode": {"repository": "r", "commit": "c", "path": "p"},
                "createdAt": "2026-01-01T00:00:00Z",
            },
            "commit",
        ),
        (
            LexLensVerification,
            {
                "$type": R.LENS_VERIFICATION_NSID,
                "lens": "at://did:plc:a/science.alt.dataset.lens/l",
                "lensCommit": "c",
                "verificationMethod": "codeReview",
                "codeHash": {"algorithm": "sha256"},
                "createdAt": "2026-01-01T00:00:00Z",
            },
            "digest",
        ),
        (LexDatasetEntry, {"$type": R.ENTRY_NSID, "name": "e"}, "schemaRef"),
        (LexSchemaRecord, {"$type": R.LABEL_NSID, "name": "x"}, "schema"),
    ],
)
def test_typed_records_reject_malformed(cls, record, where):
    with pytest.raises(RecordValidationError, match=where):
        cls.from_record(record)


def test_storage_from_record_rejects_unknown_and_malformed():
    with pytest.raises(ValueError, match="storage"):
        storage_from_record({"$type": "science.alt.dataset.storageFtp", "urls": []})
    with pytest.raises(ValueError, match="url"):
        storage_from_record(
            {"$type": R.STORAGE_HTTP, "shards": [{"checksum": {"algorithm": "sha256", "digest": SHA}}]}
        )


def test_pds_blob_store_checks_uris_before_any_request():
    store = PDSBlobStore()  # no client: the promotion engine's copy target, and URI parsing
    assert repr(store) == "PDSBlobStore()" and store.supports_streaming()
    for bad in (
        "https://x/a.tar",
        "at://did:plc:abc/blob/not-a-cid",
        "at://did:plc:abc/science.alt.dataset.entry/x",
    ):
        with pytest.raises(RecordValidationError):
            store.create_source([bad])
    assert store.read_url("https://x/a.tar") == "https://x/a.tar"
    with pytest.raises(ValueError, match="needs a client"):
        store.write_shards(None, prefix="x")


# --- the real PDS ------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_schema_publisher_and_loader_round_trip(client, pds_account):
    pub, loader = SchemaPublisher(client), SchemaLoader(client)
    uri = pub.publish(ApiSample, version="1.0.0", description="an API sample", metadata={"source": "test"})
    assert (
        isinstance(uri, AtUri)
        and uri.collection == "science.alt.dataset.schema"
        and uri.authority == client.did
    )
    # the same type again: the same record (atdata 0.7 would publish a second one)
    assert pub.publish(ApiSample, version="1.0.0") == uri
    record = loader.get(uri)
    assert record["name"] == "ApiSample" and record["version"] == "1.0.0"
    assert record["metadata"]["source"] == "test" and record["description"] == "an API sample"
    typed = loader.get_typed(str(uri))
    assert typed.schema.schema_body["required"] == ["image", "label", "count"]
    assert [r["name"] for r in loader.list_all()] == ["ApiSample"]
    assert loader.resolve(pds_account.handle, "ApiSample")["version"] == "1.0.0"
    assert loader.get(f"@{pds_account.handle}/ApiSample@1.0.0") == record
    with pytest.raises(KeyError):
        loader.resolve(pds_account.handle, "ApiSample", "9.9.9")
    # other fields under the same name and version: refused, nothing written
    with pytest.raises(SchemaConflictError, match="ApiSample"):
        pub.publish(ApiView, name="ApiSample", version="1.0.0")
    assert len(loader.list_all()) == 1
    # the name of a record of another kind is refused before any request
    with pytest.raises(RecordValidationError, match="not a schema record URI"):
        loader.get(f"at://{client.did}/science.alt.dataset.entry/3kaaaaaaaaaaa")


@pytest.mark.sandbox
def test_dataset_publisher_and_loader_round_trip(client, tmp_path):
    ds = atdata.write_samples(samples(7), tmp_path / "data", maxcount=3)
    ds._content_metadata = {"instrument": "x1"}
    pub, loader = DatasetPublisher(client), DatasetLoader(client)
    uri = pub.publish(ds, name="api-data", description="d", tags=["t1"], license="MIT")
    # the auto-published schema went in the same applyWrites as the entry: both exist
    record = loader.get(uri)
    schema = SchemaLoader(client).get(record["schemaRef"])
    assert schema["name"] == "ApiSample"
    assert loader.get_storage_type(uri) == "http"
    urls = loader.get_urls(uri)
    assert len(urls) == 3 and all(u.startswith("file://") for u in urls)
    digests = [s["checksum"]["digest"] for s in record["storage"]["shards"]]
    assert digests == [hashlib.sha256(open(u, "rb").read()).hexdigest() for u in ds.urls]
    assert record["size"] == {
        "samples": 7,
        "bytes": sum(len(open(u, "rb").read()) for u in ds.urls),
        "shards": 3,
    }
    assert loader.get_content_metadata(uri) == {"instrument": "x1"}
    assert loader.get_metadata(uri) is None and loader.get_metadata_schema_ref(uri) is None
    typed = loader.get_typed(uri)
    assert typed.tags == ["t1"] and typed.license == "MIT" and isinstance(typed.storage, StorageHttp)
    assert_same(list(loader.to_dataset(uri, ApiSample)), 7)
    assert_same(list(loader.to_dataset(uri)), 7)  # the type from the published schema
    with pytest.raises(ValueError, match="get_urls"):
        loader.get_blob_urls(uri)
    assert [r["name"] for r in loader.list_all()] == ["api-data"]
    # explicit URLs with checksums computed here (atdata would publish "none")
    uri2 = pub.publish_with_urls(
        list(ds.urls), record["schemaRef"], name="api-urls", metadata={"split": "test"}
    )
    assert loader.get_metadata(uri2) == {"split": "test"}
    assert [s["checksum"]["digest"] for s in loader.get(uri2)["storage"]["shards"]] == digests
    s3 = pub.publish_with_s3(
        "bkt",
        ["a.tar"],
        record["schemaRef"],
        name="api-s3",
        endpoint="https://s3.example.org",
        checksums=[ShardChecksum("sha256", SHA)],
    )
    assert loader.get_storage_type(s3) == "s3"
    assert loader.get_urls(s3) == ["https://s3.example.org/bkt/a.tar"]
    assert loader.get_s3_info(s3)["keys"] == ["a.tar"]
    with pytest.raises(ValueError, match="checksums"):
        pub.publish_with_s3("bkt", ["a.tar"], record["schemaRef"], name="api-s3-nosum")
    with pytest.raises(RecordValidationError):  # a schema URI that is not one, before any request
        pub.publish_with_urls(list(ds.urls), "at://did:plc:abc/science.alt.dataset.entry/x", name="bad")


@pytest.mark.sandbox
def test_pds_blob_store_write_read_and_publish(client, tmp_path):
    ds = atdata.write_samples(samples(12), tmp_path / "data.tar")  # one shard, re-sharded by maxcount
    store = PDSBlobStore(client)
    urls = store.write_shards(ds, prefix="api/v1", maxcount=5)
    assert len(urls) == math.ceil(12 / 5) and all(
        u.startswith(f"at://{client.did}/blob/bafkrei") for u in urls
    )
    assert len(urls.blob_refs) == 3 and set(urls.checksums) == set(urls)
    assert store.read_url(urls[0]).startswith(
        f"{client.pds_url}/xrpc/com.atproto.sync.getBlob?did={client.did}"
    )
    schema_uri = SchemaPublisher(client).publish(ApiSample)
    uri = DatasetPublisher(client).publish_with_blob_refs(urls.blob_refs, str(schema_uri), name="api-blobs")
    loader = DatasetLoader(client)
    assert loader.get_storage_type(uri) == "blobs"
    record = loader.get(uri)
    assert [b["checksum"]["digest"] for b in record["storage"]["blobs"]] == [urls.checksums[u] for u in urls]
    assert len(loader.get_blobs(uri)) == 3 and len(loader.get_blob_urls(uri)) == 3
    with pytest.raises(ValueError, match="get_blob_urls"):
        loader.get_urls(uri)
    # the store reads its blobs back (each checked against its CID), from URIs or getBlob URLs
    assert_same(list(atdata.Dataset[ApiSample](store.create_source(urls))), 12)
    assert_same(list(atdata.Dataset[ApiSample](store.create_source(loader.get_blob_urls(uri)))), 12)
    assert_same(list(loader.to_dataset(uri, ApiSample)), 12)
    # bytes uploaded by the publisher
    small = atdata.write_samples(samples(2), tmp_path / "small.tar")
    uri2 = DatasetPublisher(client).publish_with_blobs(
        [open(small.urls[0], "rb").read()], str(schema_uri), name="api-small"
    )
    assert_same(list(loader.to_dataset(uri2, ApiSample)), 2)


@pytest.mark.sandbox
def test_label_lens_and_verification_round_trip(client, pds_account, tmp_path):
    ds = atdata.write_samples(samples(2), tmp_path / "d.tar")
    entry_uri = DatasetPublisher(client).publish(ds, name="api-labeled")
    labels = LabelPublisher(client)
    first = labels.publish("mnist", str(entry_uri), version="1.0.0", description="first")
    loader = LabelLoader(client)
    assert loader.get(first)["datasetUri"] == str(entry_uri)
    assert loader.get_typed(first).version == "1.0.0"
    assert loader.resolve(pds_account.handle, "mnist") == str(entry_uri)
    assert loader.resolve(client.did, "mnist", "1.0.0") == str(entry_uri)
    assert [r["name"] for r in loader.list_all()] == ["mnist"]
    with pytest.raises(KeyError):
        loader.resolve(pds_account.handle, "mnist", "2.0.0")
    with pytest.raises(RecordValidationError):  # must name an entry record, checked before writing
        labels.publish("bad", "at://did:plc:abc/science.alt.dataset.schema/x")

    src = str(SchemaPublisher(client).publish(ApiSample))
    dst = str(SchemaPublisher(client).publish(ApiView))
    lens_uri = LensPublisher(client).publish(
        name="to-view",
        source_schema_uri=src,
        target_schema_uri=dst,
        code_repository="https://github.com/org/repo",
        code_commit="c" * 40,
        getter_path="lenses.py:get",
        putter_path="lenses.py:put",
        language="python",
        description="label only",
    )
    lenses = LensLoader(client)
    typed = lenses.get_typed(lens_uri)
    assert typed.getter_code == LexCodeReference(
        "https://github.com/org/repo", "c" * 40, "lenses.py:get", language="python"
    )
    assert typed.putter_code.path == "lenses.py:put" and typed.source_schema == src
    assert [r["name"] for r in lenses.find_by_schemas(src, dst)] == ["to-view"]
    assert lenses.find_by_schemas(dst) == [] and len(lenses.list_all()) == 1

    lens = Lens(lambda s: ApiView(label=s.label), source=ApiSample, view=ApiView)
    from_obj = LensPublisher(client).publish_from_lens(
        lens,
        name="from-obj",
        source_schema_uri=src,
        target_schema_uri=dst,
        code_repository="r",
        code_commit="c",
    )
    assert lenses.get(from_obj)["getterCode"]["path"].endswith(":<lambda>")

    lens_cid = client.get_record(R.LENS_NSID, AtUri.parse(str(lens_uri)).rkey)["cid"]
    proof = LexCodeReference("https://github.com/org/repo", "c" * 40, "tests/test_lens.py")
    v_uri = VerificationPublisher(client).publish(
        lens_uri=str(lens_uri),
        lens_commit=lens_cid,
        verification_method="signedHash",
        code_hash=LexCodeHash("sha256", SHA),
        proof_ref=proof,
        description="checked",
    )
    verifications = VerificationLoader(client)
    got = verifications.get_typed(v_uri)
    assert (got.lens, got.lens_commit, got.code_hash, got.proof_ref) == (
        str(lens_uri),
        lens_cid,
        LexCodeHash("sha256", SHA),
        proof,
    )
    assert [r["lensCommit"] for r in verifications.list_for_lens(str(lens_uri))] == [lens_cid]
    assert (
        len(verifications.find_by_method("signedHash")) == 1
        and verifications.find_by_method("codeReview") == []
    )
    with pytest.raises(RecordValidationError):  # verifies a lens record, checked before writing
        VerificationPublisher(client).publish(lens_uri=src, lens_commit="x", verification_method="codeReview")


@pytest.mark.sandbox
def test_atmosphere_index_with_blob_store(client, tmp_path):
    ds = atdata.write_samples(samples(6), tmp_path / "d", maxcount=4)
    store = PDSBlobStore(client)
    with pytest.deprecated_call():
        index = AtmosphereIndex(client, data_store=store)
    assert index.data_store is store
    schema_uri = index.publish_schema(ApiSample, version="1.0.0")
    entry = index.insert_dataset(ds, name="api-index", tags=["x"])
    assert entry.schema_ref == schema_uri and entry.name == "api-index"
    assert len(entry.data_urls) == 2 and all("com.atproto.sync.getBlob" in u for u in entry.data_urls)
    assert_same(list(atdata.Dataset[ApiSample](store.create_source(entry.data_urls))), 6)
    assert [e.name for e in index.list_datasets()] == ["api-index"]
    assert [e.uri for e in index.datasets] == [entry.uri]
    assert index.get_dataset(entry.uri).name == "api-index"
    assert [s["name"] for s in index.list_schemas()] == ["ApiSample"]
    T = index.get_schema_type(entry.schema_ref)
    assert_same(list(atdata.Dataset[T](store.create_source(entry.data_urls))), 6)
    with pytest.deprecated_call():
        plain = AtmosphereIndex(client)
    by_url = plain.insert_dataset(ds, name="api-index-urls", schema_ref=schema_uri)
    assert by_url.data_urls == [f"file://{u}" for u in ds.urls]


@pytest.mark.sandbox
def test_hostile_records_are_rejected(client):
    """Forged records (a stand-in by necessity: written raw, past our client's checks) never reach
    a caller: each loader raises RecordValidationError naming the field; listings skip them."""
    schema_uri = str(SchemaPublisher(client).publish(ApiSample))
    good_label = LabelPublisher(client).publish(
        "good", f"at://{client.did}/science.alt.dataset.entry/3kaaaaaaaaaaa"
    )
    forged = {
        "entry-bad-cid": (
            R.ENTRY_NSID,
            {
                "$type": R.ENTRY_NSID,
                "name": "x",
                "schemaRef": schema_uri,
                "storage": {
                    "$type": R.STORAGE_BLOBS,
                    "blobs": [
                        {
                            "blob": {
                                "$type": "blob",
                                "ref": {"$link": "../../etc/passwd"},
                                "size": 1,
                                "mimeType": "a/b",
                            }
                        }
                    ],
                },
                "createdAt": "2026-01-01T00:00:00Z",
            },
        ),
        "entry-no-storage": (
            R.ENTRY_NSID,
            {
                "$type": R.ENTRY_NSID,
                "name": "x",
                "schemaRef": schema_uri,
                "createdAt": "2026-01-01T00:00:00Z",
            },
        ),
        "schema-bad-type": (
            R.SCHEMA_NSID,
            {
                "$type": R.SCHEMA_NSID,
                "name": "Evil",
                "version": "1.0.0",
                "schemaType": "jsonSchema",
                "schema": {
                    "$type": R.JSON_SCHEMA_FORMAT,
                    "type": "object",
                    "properties": {"__class__": {"type": "exec"}},
                },
                "createdAt": "2026-01-01T00:00:00Z",
            },
        ),
        "label-not-uri": (
            R.LABEL_NSID,
            {"$type": R.LABEL_NSID, "name": "good", "datasetUri": 42, "createdAt": "2026-01-01T00:00:00Z"},
        ),
        "lens-no-commit": (
            R.LENS_NSID,
            {
                "$type": R.LENS_NSID,
                "name": "l",
                "sourceSchema": schema_uri,
                "targetSchema": schema_uri,
                "getterCode": {"repository": "r", "path": "p"},
                "putterCode": {"repository": "r", "commit": "c", "path": "p"},
                "createdAt": "2026-01-01T00:00:00Z",
            },
        ),
        "verification-bad-date": (
            R.LENS_VERIFICATION_NSID,
            {
                "$type": R.LENS_VERIFICATION_NSID,
                "lens": f"at://{client.did}/{R.LENS_NSID}/x",
                "lensCommit": "c",
                "verificationMethod": "codeReview",
                "createdAt": "yesterday",
            },
        ),
    }
    loaders = {
        R.ENTRY_NSID: DatasetLoader(client),
        R.SCHEMA_NSID: SchemaLoader(client),
        R.LABEL_NSID: LabelLoader(client),
        R.LENS_NSID: LensLoader(client),
        R.LENS_VERIFICATION_NSID: VerificationLoader(client),
    }
    for what, (nsid, record) in forged.items():
        uri = raw_create(client, nsid, record)
        with pytest.raises(RecordValidationError):
            loaders[nsid].get(uri)
            pytest.fail(f"{what} was accepted")
    # listings skip the forged records and keep the good ones
    assert [r["name"] for r in SchemaLoader(client).list_all()] == ["ApiSample"]
    assert DatasetLoader(client).list_all() == [] and LensLoader(client).list_all() == []
    assert [r["name"] for r in LabelLoader(client).list_all()] == ["good"]
    assert LabelLoader(client).get(good_label)["name"] == "good"
    with pytest.raises(RecordNotFoundError):
        DatasetLoader(client).get(f"at://{client.did}/{R.ENTRY_NSID}/3kaaaaaaaaaab")


# --- the real atdata 0.7 reads ours, and we read atdata's -----------------------------------------

ATDATA_SIDE = r"""
import json, os, sys
from atdata.atmosphere import (
    Atmosphere, SchemaLoader, DatasetLoader, LabelLoader, LensLoader, VerificationLoader,
    SchemaPublisher, DatasetPublisher, LabelPublisher, LensPublisher, VerificationPublisher,
    LexCodeHash, ShardChecksum,
)
import atdata
from numpy.typing import NDArray

job = json.load(sys.stdin)
# atdata's login also fetches the app.bsky profile, which a bare PDS (no Bluesky AppView) does not
# serve; log in with the same atproto client, skipping only that lookup.
client = Atmosphere(base_url=job["pds"])
client._client.login(job["handle"], job["password"], fetch_bsky_profile=False)
session = client._client._session
client._session = {"did": session.did, "handle": session.handle}
ours = job["ours"]
out = {}
s = SchemaLoader(client).get_typed(ours["schema"])
out["schema"] = [s.name, s.version, sorted(s.schema.schema_body["properties"])]
e = DatasetLoader(client).get_typed(ours["entry"])
out["entry"] = [e.name, e.schema_ref, type(e.storage).__name__, len(e.storage.blobs),
                [b.checksum.digest for b in e.storage.blobs], e.size.shards]
out["label"] = LabelLoader(client).resolve(client.did, "api-both")
l = LensLoader(client).get_typed(ours["lens"])
out["lens"] = [l.name, l.getter_code.repository, l.getter_code.commit, l.putter_code.path]
v = VerificationLoader(client).get_typed(ours["verification"])
out["verification"] = [v.lens, v.lens_commit, v.verification_method, v.code_hash.digest]

@atdata.packable
class TheirSample:
    image: NDArray
    label: str

theirs = {}
theirs["schema"] = str(SchemaPublisher(client).publish(TheirSample, version="2.0.0"))
theirs["entry"] = str(DatasetPublisher(client).publish_with_urls(
    ["https://example.org/their-000000.tar"], theirs["schema"], name="theirs",
    checksums=[ShardChecksum("sha256", "cd" * 32)], metadata={"split": "train", "model": "bert"}))
theirs["label"] = str(LabelPublisher(client).publish("theirs", theirs["entry"], version="0.1.0"))
theirs["lens"] = str(LensPublisher(client).publish(
    name="their-lens", source_schema_uri=theirs["schema"], target_schema_uri=ours["schema"],
    code_repository="https://github.com/them/repo", code_commit="d" * 40,
    getter_path="m:get", putter_path="m:put"))
theirs["verification"] = str(VerificationPublisher(client).publish(
    lens_uri=theirs["lens"], lens_commit="bafyreiabc", verification_method="codeReview",
    code_hash=LexCodeHash("sha256", "ef" * 32)))
out["theirs"] = theirs
print(json.dumps(out))
"""


@pytest.mark.sandbox
@pytest.mark.slow
def test_atdata_reads_our_records_and_we_read_atdatas(client, sandbox, pds_account, tmp_path):
    ref.require_atdata_venv()
    ds = atdata.write_samples(samples(3), tmp_path / "d.tar")
    store = PDSBlobStore(client)
    blobs = store.write_shards(ds, prefix="x")
    schema = str(SchemaPublisher(client).publish(ApiSample))
    entry = DatasetPublisher(client).publish_with_blob_refs(blobs.blob_refs, schema, name="api-both")
    LabelPublisher(client).publish("api-both", str(entry), version="1.0.0")
    lens = str(
        LensPublisher(client).publish(
            name="ours",
            source_schema_uri=schema,
            target_schema_uri=schema,
            code_repository="https://github.com/us/repo",
            code_commit="e" * 40,
            getter_path="m:get",
            putter_path="m:put",
        )
    )
    verification = str(
        VerificationPublisher(client).publish(
            lens_uri=lens,
            lens_commit="bafyreixyz",
            verification_method="signedHash",
            code_hash=LexCodeHash("sha256", SHA),
        )
    )
    job = {
        "handle": pds_account.handle,
        "password": pds_account.password,
        "pds": sandbox.pds_url,
        "ours": {"schema": schema, "entry": str(entry), "lens": lens, "verification": verification},
    }
    out = ref.run_atdata_json(ATDATA_SIDE, stdin=json.dumps(job), timeout=300)
    assert out["schema"] == ["ApiSample", "1.0.0", ["count", "image", "label"]]
    assert out["entry"] == ["api-both", schema, "StorageBlobs", 1, [blobs.checksums[blobs[0]]], 1]
    assert out["label"] == str(entry)
    assert out["lens"] == ["ours", "https://github.com/us/repo", "e" * 40, "m:put"]
    assert out["verification"] == [lens, "bafyreixyz", "signedHash", SHA]

    theirs = out["theirs"]
    s = SchemaLoader(client).get_typed(theirs["schema"])
    assert (s.name, s.version) == ("TheirSample", "2.0.0")
    assert SchemaLoader(client).get(f"@{pds_account.handle}/TheirSample@2.0.0")["version"] == "2.0.0"
    loader = DatasetLoader(client)
    assert loader.get_urls(theirs["entry"]) == ["https://example.org/their-000000.tar"]
    assert loader.get_metadata(theirs["entry"]) == {"split": "train", "model": "bert"}
    assert loader.get_typed(theirs["entry"]).storage.shards[0].checksum == ShardChecksum("sha256", "cd" * 32)
    assert LabelLoader(client).resolve(pds_account.handle, "theirs", "0.1.0") == theirs["entry"]
    lens_rec = LensLoader(client).get_typed(theirs["lens"])
    assert (lens_rec.getter_code.commit, lens_rec.target_schema) == ("d" * 40, schema)
    v = VerificationLoader(client).get_typed(theirs["verification"])
    assert (v.verification_method, v.code_hash) == ("codeReview", LexCodeHash("sha256", "ef" * 32))
    # what atdata's Index would see through our AtmosphereIndex-compatible reader
    assert {r["name"] for r in loader.list_all()} == {"api-both", "theirs"}


@pytest.mark.sandbox
def test_index_with_pds_blob_store_promotes_as_blobs(client, tmp_path, monkeypatch):
    """``Index(atmosphere=client, data_store=PDSBlobStore(client))``, as atdata's page writes it: new
    shards stay in the local store, and promote_dataset uploads them as blobs."""
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    store = PDSBlobStore(client)
    index = atdata.Index(atmosphere=client, data_store=store)
    assert isinstance(index.data_store, atdata.LocalDiskStore)
    ds = atdata.write_samples(samples(4), tmp_path / "d.tar")
    uri = index.promote_dataset(ds, name="api-promoted", progress=False)
    loader = DatasetLoader(client)
    assert loader.get_storage_type(uri) == "blobs"
    assert_same(list(loader.to_dataset(uri, ApiSample)), 4)
