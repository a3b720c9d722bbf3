"""The lexicon validator: limits, formats, unions, refs, floats, sizes — all offline."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdata_lab.atmosphere.lexicon import (
    MAX_RECORD_JSON_BYTES,
    Lexicons,
    bundled_lexicons,
    check_data_model,
    grapheme_count,
    validate_record,
)
from atdata_lab.errors import RecordSizeError, RecordTooLargeError, RecordValidationError

REPO = Path(__file__).resolve().parents[1]
DID = "did:plc:abcdefghijklmnopqrstuvwx"
SCHEMA_URI = f"at://{DID}/science.alt.dataset.schema/3kabcdefghij2"
SHA = "ab" * 32


def fixture_dir() -> Path:
    for d in (REPO / "tests/fixtures/atdata-0.7", REPO / "../shared/fixtures/atdata-0.7"):
        if (d / "records.json").is_file():
            return d
    pytest.skip(
        "atdata 0.7 fixtures not found in tests/fixtures/atdata-0.7 nor ../shared/fixtures/atdata-0.7"
    )


def atdata_records() -> list[dict]:
    return json.loads((fixture_dir() / "records.json").read_text())


def entry(**over):
    rec = {
        "$type": "science.alt.dataset.entry",
        "name": "mnist",
        "schemaRef": SCHEMA_URI,
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {"url": "https://example.org/a.tar", "checksum": {"algorithm": "sha256", "digest": SHA}}
            ],
        },
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    rec.update(over)
    return rec


def schema(**over):
    rec = {
        "$type": "science.alt.dataset.schema",
        "name": "S",
        "version": "1.0.0",
        "schemaType": "jsonSchema",
        "schema": {
            "$type": "science.alt.dataset.schema#jsonSchemaFormat",
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "required": ["x"],
        },
        "createdAt": "2026-01-01T00:00:00Z",
        "atdataSchemaVersion": 1,
    }
    rec.update(over)
    return rec


def err(record, collection=None) -> str:
    with pytest.raises(RecordValidationError) as ei:
        validate_record(record, collection)
    return str(ei.value)


# ---------------------------------------------------------------------------------------------


def test_bundled_lexicons_loaded():
    lex = bundled_lexicons()
    for nsid in (
        "science.alt.dataset.schema",
        "science.alt.dataset.entry",
        "science.alt.dataset.label",
        "science.alt.dataset.storageHttp",
        "science.alt.dataset.storageS3",
        "science.alt.dataset.storageBlobs",
    ):
        assert nsid in lex


def test_atdata_fixture_records_are_valid():
    for r in atdata_records():
        validate_record(r["record"], r["collection"])


def test_tag_too_long_message_names_path_and_limit():
    msg = err(entry(tags=["a", "b", "c", "x" * 162]))
    assert msg == "entry.tags[3]: 162 characters, the limit is 150"


def test_max_length_counts_utf8_bytes_not_characters():
    # 60 'é' = 60 characters but 120 UTF-8 bytes; schema.name allows 100 (bytes).
    msg = err(schema(name="é" * 60))
    assert "schema.name" in msg and "120 UTF-8 bytes" in msg and "100" in msg
    validate_record(schema(name="é" * 50))  # 100 bytes: at the limit


def test_array_max_length():
    msg = err(entry(tags=[f"t{i}" for i in range(31)]))
    assert msg == "entry.tags: 31 items, the limit is 30"


def test_array_min_length_via_ref():
    rec = entry(storage={"$type": "science.alt.dataset.storageHttp", "shards": []})
    assert "entry.storage.shards: 0 items, at least 1 required" in err(rec)


def test_required_fields():
    rec = entry()
    del rec["schemaRef"]
    assert err(rec) == "entry.schemaRef: required field is missing"
    rec = entry()
    rec["storage"]["shards"][0]["checksum"].pop("digest")
    assert err(rec) == "entry.storage.shards[0].checksum.digest: required field is missing"


def test_integer_minimum_and_type():
    assert "entry.size.shards: 0 is below the minimum 1" in err(entry(size={"samples": 1, "shards": 0}))
    assert "entry.size.samples: -1 is below the minimum 0" in err(entry(size={"samples": -1}))
    assert "expected an integer, got a boolean" in err(entry(size={"samples": True}))
    assert "expected an integer, got a string" in err(schema(atdataSchemaVersion="1"))
    assert "below the minimum 1" in err(schema(atdataSchemaVersion=0))


def test_formats():
    assert "entry.schemaRef" in err(entry(schemaRef="https://example.org/x")) and "at-uri" in err(
        entry(schemaRef="https://example.org/x")
    )
    assert "entry.createdAt" in err(entry(createdAt="2026-01-01 00:00:00"))
    assert "datetime" in err(entry(createdAt="2026-01-01T00:00:00"))  # no timezone
    validate_record(entry(createdAt="2026-11-26T04:28:56.136412+00:00"))
    validate_record(entry(schemaRef="at://alice.example.com/science.alt.dataset.schema/abc"))
    assert "uri" in err(
        entry(
            storage={
                "$type": "science.alt.dataset.storageHttp",
                "shards": [{"url": "not a url", "checksum": {"algorithm": "sha256", "digest": SHA}}],
            }
        )
    )


def test_did_format_through_custom_lexicon():
    lex = Lexicons(
        [
            {
                "lexicon": 1,
                "id": "x.test.rec",
                "defs": {
                    "main": {
                        "type": "record",
                        "key": "tid",
                        "record": {
                            "type": "object",
                            "required": ["who"],
                            "properties": {"who": {"type": "string", "format": "did"}},
                        },
                    }
                },
            }
        ]
    )
    lex.validate_record("x.test.rec", {"$type": "x.test.rec", "who": DID})
    with pytest.raises(RecordValidationError, match=r"rec.who: .* not a valid did"):
        lex.validate_record("x.test.rec", {"$type": "x.test.rec", "who": "alice"})


def test_semver_pattern_on_schema_version():
    for good in ("1.0.0", "0.1.0-rc.1+build.5", "10.20.30"):
        validate_record(schema(version=good))
    for bad in ("1.0", "v1.0.0", "01.0.0", "1.0.0.0"):
        msg = err(schema(version=bad))
        assert msg.startswith("schema.version:") and "semantic version" in msg


def test_const_in_json_schema_format():
    rec = schema()
    rec["schema"]["type"] = "array"
    assert err(rec).startswith('schema.schema.type: must be "object"')


def test_union_membership():
    rec = entry(storage={"shards": []})
    assert "entry.storage.$type: required" in err(rec)
    # open union (no "closed"): an unknown member is accepted unchecked
    validate_record(
        entry(storage={"$type": "science.alt.dataset.storageExternal", "urls": ["https://x/y.tar"]})
    )
    lex = Lexicons(
        [
            {
                "lexicon": 1,
                "id": "x.test.u",
                "defs": {
                    "main": {
                        "type": "record",
                        "key": "tid",
                        "record": {
                            "type": "object",
                            "properties": {"v": {"type": "union", "refs": ["#a"], "closed": True}},
                        },
                    },
                    "a": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
                },
            }
        ]
    )
    lex.validate_record("x.test.u", {"$type": "x.test.u", "v": {"$type": "x.test.u#a", "n": 1}})
    with pytest.raises(RecordValidationError, match=r"u.v.\$type: 'x.test.u#b' is not one of"):
        lex.validate_record("x.test.u", {"$type": "x.test.u", "v": {"$type": "x.test.u#b"}})
    with pytest.raises(RecordValidationError, match="u.v.n: required"):
        lex.validate_record("x.test.u", {"$type": "x.test.u", "v": {"$type": "x.test.u#a"}})


def test_refs_resolve_across_lexicons():
    rec = entry(
        storage={
            "$type": "science.alt.dataset.storageS3",
            "bucket": "b",
            "shards": [{"key": "k", "checksum": {"algorithm": "sha256", "digest": "x" * 129}}],
        }
    )
    assert err(rec) == "entry.storage.shards[0].checksum.digest: 129 characters, the limit is 128"


def test_no_floats_anywhere():
    assert err(entry(size={"samples": 1.0})).startswith("entry.size.samples: the float 1.0 is not allowed")
    msg = err(entry(contentMetadata={"instrument": {"gain": [1, 2.5]}}))
    assert msg.startswith("entry.contentMetadata.instrument.gain[1]: the float 2.5")
    assert "string" in msg
    rec = schema()
    rec["schema"]["properties"]["x"]["minimum"] = 0.5
    assert err(rec).startswith("schema.schema.properties.x.minimum: the float 0.5")
    with pytest.raises(RecordValidationError, match="nan"):
        check_data_model({"a": float("nan")})


def test_type_must_match_collection():
    assert "does not match the collection" in err(entry(), "science.alt.dataset.label")


def test_unknown_must_be_object_and_nullness():
    assert "entry.contentMetadata: expected an object" in err(entry(contentMetadata=[1]))
    assert "entry.description: null is not allowed" in err(entry(description=None))


def test_entry_metadata_bytes_or_atdata_dict():
    validate_record(entry(metadata={"$bytes": "gaFhAQ"}))  # msgpack {"a": 1}
    validate_record(entry(metadata={"split": "train"}))  # what atdata 0.7 writes
    assert "entry.metadata" in err(entry(metadata="train"))


def test_blob_accept_and_max_size():
    def blobs(mime="application/x-tar", size=10):
        return entry(
            storage={
                "$type": "science.alt.dataset.storageBlobs",
                "blobs": [
                    {
                        "blob": {
                            "$type": "blob",
                            "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
                            "mimeType": mime,
                            "size": size,
                        }
                    }
                ],
            }
        )

    validate_record(blobs())
    assert "mimeType: 'image/png' is not accepted" in err(blobs(mime="image/png"))
    assert "size: 52,428,801 bytes, the limit is 52,428,800" in err(blobs(size=52_428_801))


def test_record_size_limit():
    big = entry(contentMetadata={"blob": "x" * MAX_RECORD_JSON_BYTES})
    with pytest.raises(RecordSizeError) as ei:
        validate_record(big)
    assert isinstance(ei.value, RecordValidationError) and isinstance(ei.value, RecordTooLargeError)
    assert "1,000,000" in str(ei.value)


def test_graphemes():
    assert grapheme_count("e\u0301") == 1
    assert grapheme_count("👩\u200d👩\u200d👧") == 1
    assert grapheme_count("👍🏽ab") == 3
    lex = Lexicons(
        [
            {
                "lexicon": 1,
                "id": "x.test.g",
                "defs": {
                    "main": {
                        "type": "record",
                        "key": "tid",
                        "record": {
                            "type": "object",
                            "properties": {"t": {"type": "string", "maxGraphemes": 2, "maxLength": 100}},
                        },
                    }
                },
            }
        ]
    )
    lex.validate_record("x.test.g", {"$type": "x.test.g", "t": "e\u0301e\u0301"})
    with pytest.raises(RecordValidationError, match="g.t: 3 characters, the limit is 2"):
        lex.validate_record("x.test.g", {"$type": "x.test.g", "t": "abc"})


def test_validation_never_touches_the_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "socket", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    bundled_lexicons.cache_clear()
    for r in atdata_records():
        validate_record(r["record"], r["collection"])
    err(entry(tags=["x" * 200]))


# --- fuzzing: only our own error may come out ---------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "$type",
                    "name",
                    "shards",
                    "url",
                    "checksum",
                    "blob",
                    "$link",
                    "$bytes",
                    "ref",
                    "size",
                    "tags",
                    "schema",
                    "properties",
                    "storage",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)

COLLECTIONS = [
    "science.alt.dataset.schema",
    "science.alt.dataset.entry",
    "science.alt.dataset.label",
    "science.alt.dataset.lens",
    "science.alt.dataset.lensVerification",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(collection=st.sampled_from(COLLECTIONS), value=json_values)
def test_fuzz_arbitrary_values(collection, value):
    try:
        validate_record(value, collection)
    except RecordValidationError:
        pass


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_fixture_records(data):
    recs = atdata_records()
    r = data.draw(st.sampled_from(recs))
    rec = copy.deepcopy(r["record"])
    paths = [p for p in _paths(rec) if p]
    path = data.draw(st.sampled_from(paths))
    parent = rec
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(json_values)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    try:
        validate_record(rec, r["collection"])
    except RecordValidationError as e:
        assert str(e)  # always a message
