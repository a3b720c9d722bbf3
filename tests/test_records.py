"""Record builders/parsers: atdata 0.7 compatibility both ways, our extras, TIDs, AT-URIs, CIDs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import libipld
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdata_lab.atmosphere import records as R
from atdata_lab.errors import RecordValidationError

REPO = Path(__file__).resolve().parents[1]
DID = "did:plc:abcdefghijklmnopqrstuvwx"
SCHEMA_URI = f"at://{DID}/science.alt.dataset.schema/3kabcdefghij2"
ENTRY_URI = f"at://{DID}/science.alt.dataset.entry/3kabcdefghij3"
SHA = hashlib.sha256(b"shard").hexdigest()


def fixture_dir() -> Path:
    for d in (REPO / "tests/fixtures/atdata-0.7", REPO / "../shared/fixtures/atdata-0.7"):
        if (d / "records.json").is_file():
            return d
    pytest.skip(
        "atdata 0.7 fixtures not found in tests/fixtures/atdata-0.7 nor ../shared/fixtures/atdata-0.7"
    )


def atdata_records(collection: str | None = None) -> list[dict]:
    recs = json.loads((fixture_dir() / "records.json").read_text())
    return [r for r in recs if collection is None or r["collection"] == collection]


def atdata_local_schemas() -> dict:
    return json.loads((fixture_dir() / "local_schemas.json").read_text())


def our_local_schema() -> dict:
    return {
        "name": "ExperimentSample",
        "version": "1.0.0",
        "fields": [
            {
                "name": "measurement",
                "fieldType": {"$type": "local#ndarray", "dtype": "<f4", "shape": [64]},
                "optional": False,
            },
            {
                "name": "timestamp",
                "fieldType": {"$type": "local#primitive", "primitive": "float"},
                "optional": False,
            },
            {
                "name": "tags",
                "fieldType": {
                    "$type": "local#array",
                    "items": {"$type": "local#primitive", "primitive": "str"},
                },
                "optional": False,
            },
            {
                "name": "image",
                "fieldType": {"$type": "local#ndarray", "dtype": "|u1", "shape": [None, None, 3]},
                "optional": True,
            },
            {
                "name": "raw",
                "fieldType": {"$type": "local#primitive", "primitive": "bytes"},
                "optional": False,
            },
            {"name": "extra", "fieldType": {"$type": "local#dict"}, "optional": True},
            {"name": "any_list", "fieldType": {"$type": "local#array", "items": None}, "optional": True},
            {"name": "blob", "fieldType": {"$type": "local#ndarray", "dtype": None}, "optional": False},
        ],
        "description": "A sample from a scientific experiment.",
        "createdAt": "2026-11-26T04:28:56.146Z",
        "contentCid": "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey",
    }


def cbor_sorted(obj):
    """Re-create what the PDS gives back: map keys in DAG-CBOR order (length, then bytes)."""
    if isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: (len(k.encode()), k.encode()))
        return {k: cbor_sorted(obj[k]) for k in keys}
    if isinstance(obj, list):
        return [cbor_sorted(v) for v in obj]
    return obj


# --- schema records ------------------------------------------------------------------------------


def test_schema_record_carries_everything_atdata_does():
    local = atdata_local_schemas()
    for theirs in atdata_records("science.alt.dataset.schema"):
        rec = theirs["record"]
        ours = R.schema_record(local[rec["name"]], created_at=rec["createdAt"])
        for key, value in rec.items():
            if key == "schema":
                continue
            assert ours[key] == value, key
        for key, value in rec["schema"].items():
            if key == "properties":
                for pname, prop in value.items():
                    for pk, pv in prop.items():  # ours may add dtype/shape; never drop or change theirs
                        assert ours["schema"]["properties"][pname][pk] == pv, (pname, pk)
                assert set(ours["schema"]["properties"]) == set(value)
            else:
                assert ours["schema"][key] == value, key


def test_schema_record_extras():
    rec = R.schema_record(our_local_schema(), license="MIT", tags=["physics"])
    props = rec["schema"]["properties"]
    assert props["measurement"] == {"$ref": R.NDARRAY_REF, "dtype": "<f4", "shape": [64]}
    assert props["image"] == {"$ref": R.NDARRAY_REF, "dtype": "|u1", "shape": [None, None, 3]}
    assert props["blob"] == {"$ref": R.NDARRAY_REF}
    assert props["extra"] == {"type": "object"}
    assert props["raw"] == {"type": "string", "format": "byte", "contentEncoding": "base64"}
    assert rec["schema"]["propertyOrder"] == [f["name"] for f in our_local_schema()["fields"]]
    assert rec["schema"]["required"] == ["measurement", "timestamp", "tags", "raw", "blob"]
    assert rec["metadata"] == {
        "license": "MIT",
        "tags": ["physics"],
        "contentCid": our_local_schema()["contentCid"],
    }
    assert rec["createdAt"] == "2026-11-26T04:28:56.146Z"
    assert rec["description"] == "A sample from a scientific experiment."


def test_schema_round_trip_survives_cbor_key_sorting():
    local = our_local_schema()
    back = R.local_schema_from_record(cbor_sorted(R.schema_record(local)))
    assert back == local


def test_schema_dtype_names_normalised():
    local = atdata_local_schemas()["ExperimentSample"]  # dtype "float32" (numpy name)
    rec = R.schema_record(local)
    assert rec["schema"]["properties"]["measurement"]["dtype"] == "<f4"
    parsed = R.local_schema_from_record(
        {
            **rec,
            "schema": {
                **rec["schema"],
                "properties": {
                    **rec["schema"]["properties"],
                    "measurement": {"$ref": R.NDARRAY_REF, "dtype": "float64"},
                },
            },
        }
    )
    assert parsed["fields"][0]["fieldType"] == {"$type": "local#ndarray", "dtype": "<f8"}


def test_local_schema_from_atdata_records():
    local = atdata_local_schemas()
    for theirs in atdata_records("science.alt.dataset.schema"):
        parsed = R.local_schema_from_record(cbor_sorted(theirs["record"]))
        expected = local[parsed["name"]]
        assert [f["name"] for f in parsed["fields"]] == [f["name"] for f in expected["fields"]]
        for got, want in zip(parsed["fields"], expected["fields"], strict=True):
            assert got["optional"] == want["optional"], got["name"]
            if want["fieldType"]["$type"] == "local#ndarray":
                # atdata's record carries no dtype (its local "float32" is a default, not a fact)
                assert got["fieldType"] == {"$type": "local#ndarray", "dtype": None}
            else:
                assert got["fieldType"] == want["fieldType"], got["name"]
        assert parsed["version"] == "1.0.0"
        assert "contentCid" not in parsed


def test_local_schema_from_record_json_schema_variants():
    rec = R.schema_record(our_local_schema())
    rec["schema"]["properties"] = {
        "a": {"type": ["string", "null"]},
        "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    }
    rec["schema"]["required"] = ["a", "b"]
    del rec["schema"]["propertyOrder"]
    parsed = R.local_schema_from_record(rec)
    assert parsed["fields"] == [
        {"name": "a", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": True},
        {"name": "b", "fieldType": {"$type": "local#primitive", "primitive": "int"}, "optional": True},
    ]
    # a stale propertyOrder (not the same set) is ignored
    rec["schema"]["propertyOrder"] = ["b"]
    assert [f["name"] for f in R.local_schema_from_record(rec)["fields"]] == ["a", "b"]


def test_schema_record_errors():
    bad = our_local_schema()
    bad["version"] = "1.0"
    with pytest.raises(RecordValidationError, match="schema.version"):
        R.schema_record(bad)
    bad = our_local_schema()
    bad["fields"][0]["fieldType"]["dtype"] = "notadtype"
    with pytest.raises(RecordValidationError, match=r"fields\[0\].fieldType.dtype"):
        R.schema_record(bad)
    bad = our_local_schema()
    bad["fields"].append(dict(bad["fields"][0]))
    with pytest.raises(RecordValidationError, match="duplicate field"):
        R.schema_record(bad)
    bad = our_local_schema()
    bad["name"] = "N" * 101
    with pytest.raises(RecordValidationError, match="schema.name: 101 characters, the limit is 100"):
        R.schema_record(bad)
    with pytest.raises(RecordValidationError, match="schema.schemaType"):
        R.local_schema_from_record({"name": "a", "version": "1.0.0", "schemaType": "avro", "schema": {}})


# --- entry records -------------------------------------------------------------------------------


def test_entry_http_round_trip_with_metadata_and_extras():
    meta = {
        "split": "train",
        "source_uri": "https://src",
        "model": "bert",
        "epochs": 10,
        "nested": {"a": [1, 2]},
        "sourceUri": "kept-as-is",
    }
    rec = R.entry_record(
        "mnist",
        SCHEMA_URI,
        R.storage_http(
            [("https://example.org/a.tar", SHA), {"url": "https://example.org/b.tar", "sha256": SHA}]
        ),
        description="d",
        tags=["vision"],
        license="MIT",
        size={"samples": 10, "bytes": 1000, "shards": 2},
        metadata=meta,
        content_cid="bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey",
        created_at="2026-01-01T00:00:00Z",
    )
    assert rec["metadata"] == {
        "split": "train",
        "sourceUri": "https://src",
        "custom": {"model": "bert", "epochs": 10, "nested": {"a": [1, 2]}, "sourceUri": "kept-as-is"},
    }
    assert rec["contentMetadata"] == {
        "atdataLabCid": "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey"
    }
    assert rec["storage"]["shards"][0] == {
        "url": "https://example.org/a.tar",
        "checksum": {"algorithm": "sha256", "digest": SHA},
    }
    parsed = R.entry_from_record(cbor_sorted(rec))
    assert parsed["metadata"] == meta
    assert parsed["contentCid"].startswith("bafyrei") and parsed["contentMetadata"] is None
    assert parsed["storage"] == {
        "kind": "http",
        "shards": [
            {"url": "https://example.org/a.tar", "checksum": {"algorithm": "sha256", "digest": SHA}},
            {"url": "https://example.org/b.tar", "checksum": {"algorithm": "sha256", "digest": SHA}},
        ],
    }
    assert parsed["size"] == {"samples": 10, "bytes": 1000, "shards": 2}
    assert (parsed["name"], parsed["schemaRef"], parsed["tags"], parsed["license"]) == (
        "mnist",
        SCHEMA_URI,
        ["vision"],
        "MIT",
    )


def test_entry_s3_and_blobs():
    rec = R.entry_record(
        "d",
        SCHEMA_URI,
        R.storage_s3("bkt", [("data/a.tar", SHA)], region="us-east-1", endpoint="http://127.0.0.1:9000"),
    )
    p = R.entry_from_record(rec)["storage"]
    assert p == {
        "kind": "s3",
        "bucket": "bkt",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9000",
        "shards": [
            {
                "key": "data/a.tar",
                "url": "s3://bkt/data/a.tar",
                "checksum": {"algorithm": "sha256", "digest": SHA},
            }
        ],
    }
    blob = {
        "$type": "blob",
        "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
        "mimeType": "application/x-tar",
        "size": 10240,
    }
    rec = R.entry_record("d", SCHEMA_URI, R.storage_blobs([{"blob": blob, "sha256": SHA}, {"blob": blob}]))
    p = R.entry_from_record(rec)["storage"]
    assert p["kind"] == "blobs"
    assert p["shards"][0] == {
        "blob": blob,
        "cid": blob["ref"]["$link"],
        "size": 10240,
        "mimeType": "application/x-tar",
        "checksum": {"algorithm": "sha256", "digest": SHA},
    }
    assert p["shards"][1]["checksum"] is None


def test_entry_from_atdata_records():
    for theirs in atdata_records("science.alt.dataset.entry"):
        p = R.entry_from_record(theirs["record"])
        assert p["metadata"] == {"split": "train"}
        assert p["storage"]["kind"] == "http"
        assert all(s["checksum"] is None for s in p["storage"]["shards"])  # atdata's "none"
        assert p["license"] == "CC-BY-4.0" and p["tags"] == ["fixture"]


def test_entry_metadata_matches_atdata_for_plain_keys():
    theirs = atdata_records("science.alt.dataset.entry")[0]["record"]
    ours = R.entry_record(
        theirs["name"],
        theirs["schemaRef"],
        theirs["storage"] | {},
        metadata={"split": "train"},
        description=theirs["description"],
        tags=theirs["tags"],
        license=theirs["license"],
        created_at=theirs["createdAt"],
    )
    assert ours == theirs


def test_entry_metadata_msgpack_bytes_form():
    packed = msgpack.packb({"split": "test", "lr": "0.1"}, use_bin_type=True)
    assert R.decode_entry_metadata({"$bytes": base64.b64encode(packed).decode()}) == {
        "split": "test",
        "lr": "0.1",
    }
    assert R.decode_entry_metadata(packed) == {"split": "test", "lr": "0.1"}
    assert R.decode_entry_metadata(None) is None


def test_float_metadata_rejected_with_key_and_advice():
    with pytest.raises(RecordValidationError) as ei:
        R.entry_record(
            "d",
            SCHEMA_URI,
            R.storage_http([("https://x/a.tar", SHA)]),
            metadata={"hyper": {"learning_rate": 0.001}},
        )
    msg = str(ei.value)
    assert msg.startswith("entry.metadata.hyper.learning_rate: the float 0.001 is not allowed")
    assert "string" in msg and '"0.001"' in msg


def test_entry_checksum_required_and_hex():
    with pytest.raises(RecordValidationError, match=r"shards\[0\].checksum: a sha256 hex digest"):
        R.storage_http([("https://x/a.tar", "nothex")])


def test_entry_limits():
    with pytest.raises(RecordValidationError, match=r"entry.tags\[1\]: 151 characters, the limit is 150"):
        R.entry_record("d", SCHEMA_URI, R.storage_http([("https://x/a.tar", SHA)]), tags=["ok", "x" * 151])
    with pytest.raises(RecordValidationError, match="entry.schemaRef"):
        R.entry_record("d", "not-a-uri", R.storage_http([("https://x/a.tar", SHA)]))


# --- labels --------------------------------------------------------------------------------------


def test_label_matches_atdata():
    for theirs in atdata_records("science.alt.dataset.label"):
        rec = theirs["record"]
        ours = R.label_record(
            rec["name"], rec["datasetUri"], version=rec.get("version"), created_at=rec["createdAt"]
        )
        assert ours == rec
        assert R.label_from_record(ours)["datasetUri"] == rec["datasetUri"]
    with pytest.raises(RecordValidationError, match="label.datasetUri"):
        R.label_record("x", "https://nope")


# --- TIDs, rkeys, AT-URIs, CIDs -----------------------------------------------------------------


def test_make_tid():
    assert R.make_tid(0, 0) == "2222222222222"
    t = R.make_tid(1_700_000_000_000_000, 5)
    assert len(t) == 13 and R.is_valid_tid(t) and R.is_valid_rkey(t)
    assert R.tid_timestamp_us(t) == 1_700_000_000_000_000
    tids = [R.make_tid() for _ in range(2000)]
    assert tids == sorted(tids) and len(set(tids)) == len(tids)
    with pytest.raises(ValueError):
        R.make_tid(clock_id=1024)


def test_rkeys():
    for good in ("3kabcdefghij2", "self", "a.b-c_d:e~f", "x" * 512):
        assert R.is_valid_rkey(good)
    for bad in ("", ".", "..", "a/b", "a@b", "x" * 513, "sp ace", None):
        assert not R.is_valid_rkey(bad)
    k = R.schema_rkey("my.pkg.Sample", "1.0.0+build")
    assert R.is_valid_rkey(k) and k != R.schema_rkey("my.pkg.Sample", "1.0.0_build")
    assert R.schema_rkey("Sample", "1.0.0") == "Sample-1.0.0"


def test_at_uri():
    u = R.AtUri.parse(ENTRY_URI)
    assert (u.did, u.collection, u.rkey) == (DID, "science.alt.dataset.entry", "3kabcdefghij3")
    assert str(u) == ENTRY_URI
    assert (
        str(R.AtUri.make(DID, "science.alt.dataset.label", "abc"))
        == f"at://{DID}/science.alt.dataset.label/abc"
    )
    assert R.AtUri.parse("at://alice.test").did is None
    for bad in (
        "https://x",
        "at://",
        "at://notadid/coll/rkey/extra",
        f"at://{DID}/coll/a@b",
        "at://did:plc:x//r",
    ):
        with pytest.raises(RecordValidationError):
            R.AtUri.parse(bad)


def test_record_cid_matches_libipld():
    for r in atdata_records():
        rec = r["record"]
        digest = hashlib.sha256(libipld.encode_dag_cbor(rec)).digest()
        want = "b" + base64.b32encode(bytes([1, 0x71, 0x12, 0x20]) + digest).decode().lower().rstrip("=")
        assert R.record_cid(rec) == want
    # $bytes is encoded as bytes, like the PDS does
    assert R.record_cid({"a": {"$bytes": base64.b64encode(b"xy").decode()}}) == R.record_cid({"a": b"xy"})


# --- atdata 0.7 itself reads what we write -----------------------------------------------------

ATDATA_READER = r"""
import json, sys
from atdata.atmosphere._lexicon_types import LexDatasetEntry, LexLabelRecord, LexSchemaRecord
from atdata._schema_codec import _convert_atmosphere_schema
recs = json.load(sys.stdin)
schema = LexSchemaRecord.from_record(recs["schema"])
entry = LexDatasetEntry.from_record(recs["entry"])
label = LexLabelRecord.from_record(recs["label"])
print(json.dumps({
    "schema_name": schema.name, "schema_version": schema.version,
    "local": _convert_atmosphere_schema(recs["schema"]),
    "entry_metadata": entry.metadata.to_dict() if entry.metadata else None,
    "entry_urls": [s.url for s in entry.storage.shards],
    "entry_checksums": [s.checksum.digest for s in entry.storage.shards],
    "label": [label.name, label.dataset_uri, label.version],
}))
"""


def test_atdata_reads_our_records():
    from tests.support import atdata_reference as ref

    ref.require_atdata_venv()
    local = our_local_schema()
    local["fields"] = [f for f in local["fields"] if f["fieldType"]["$type"] != "local#dict"]
    recs = {
        "schema": cbor_sorted(R.schema_record(local)),
        "entry": cbor_sorted(
            R.entry_record(
                "exp",
                SCHEMA_URI,
                R.storage_http([("https://x/a.tar", SHA)]),
                metadata={"split": "train", "model": "bert", "epochs": 3},
            )
        ),
        "label": R.label_record("exp", ENTRY_URI, version="1.0.0"),
    }
    out = ref.run_atdata_json(ATDATA_READER, stdin=json.dumps(recs), timeout=120)
    assert (out["schema_name"], out["schema_version"]) == ("ExperimentSample", "1.0.0")
    fields = {f["name"]: f for f in out["local"]["fields"]}
    assert fields["measurement"]["fieldType"] == {"$type": "local#ndarray", "dtype": "<f4", "shape": [64]}
    assert fields["raw"]["fieldType"] == {"$type": "local#primitive", "primitive": "bytes"}
    assert fields["image"]["optional"] is True and fields["timestamp"]["optional"] is False
    assert out["entry_metadata"] == {"split": "train", "model": "bert", "epochs": 3}
    assert out["entry_urls"] == ["https://x/a.tar"] and out["entry_checksums"] == [SHA]
    assert out["label"] == ["exp", ENTRY_URI, "1.0.0"]


# --- fuzzing ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "$ref",
                    "type",
                    "items",
                    "format",
                    "dtype",
                    "shape",
                    "anyOf",
                    "properties",
                    "required",
                    "propertyOrder",
                    "name",
                    "version",
                    "schema",
                    "metadata",
                ]
            )
            | st.text(max_size=6),
            c,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, base=st.booleans())
def test_fuzz_local_schema_from_record_only_our_errors(value, base):
    rec = value
    if base and isinstance(value, dict):
        rec = {
            "name": "S",
            "version": "1.0.0",
            "schemaType": "jsonSchema",
            "schema": {
                "properties": value,
                "required": list(value)[:1],
                "propertyOrder": value.get("propertyOrder"),
            },
        }
    try:
        R.local_schema_from_record(rec)
    except RecordValidationError:
        pass


field_types = st.recursive(
    st.sampled_from(R._PRIMITIVES).map(lambda p: {"$type": "local#primitive", "primitive": p})
    | st.just({"$type": "local#dict"})
    | st.builds(
        lambda d, s: {"$type": "local#ndarray", "dtype": d, **({"shape": s} if s is not None else {})},
        st.sampled_from([None, "<f4", "|u1", ">i8", "|b1", "<c8"]),
        st.none() | st.lists(st.none() | st.integers(0, 9), max_size=3),
    ),
    lambda c: st.builds(lambda i: {"$type": "local#array", "items": i}, st.none() | c),
    max_leaves=3,
)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.lists(
        st.tuples(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), field_types, st.booleans()),
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_fuzz_schema_round_trip(fields):
    local = {
        "name": "S",
        "version": "2.0.1",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "fields": [{"name": n, "fieldType": ft, "optional": o} for n, ft, o in fields],
    }
    assert R.local_schema_from_record(cbor_sorted(R.schema_record(local))) == local
