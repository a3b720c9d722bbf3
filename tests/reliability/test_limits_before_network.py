"""Every lexicon limit, every invalid name and every float is refused before any network call.

The limits are not listed by hand: they are read from the bundled lexicon files (every
``maxLength``, ``minLength``, ``maxGraphemes``, ``format``, ``const``, ``enum``, ``pattern``,
``minimum``, ``maximum``, ``maxSize``, ``accept``, ``required`` and type of the schema, entry and label
records and of every def they reference, storage union members included). For each one a valid record
is made to break exactly that limit and sent through a logged-in client (``create_record`` and
``apply_writes``): it must fail with ``RecordValidationError`` whose message names the field path and
the limit, and the client's request counter must not move.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.atmosphere.lexicon import bundled_lexicons, validate_record
from atdata_lab.errors import AtdataLabError, RecordValidationError
from tests.reliability.support import samples

pytestmark = pytest.mark.sandbox

DID = "did:plc:abcdefghijklmnopqrstuvwx"
SHA = "ab" * 32
LEX = bundled_lexicons()


@dataclass(frozen=True)
class Limit:
    collection: str
    union: str | None  # the storage member this limit lives in
    path: tuple
    kind: str
    value: Any
    schema_json: str

    @property
    def where(self) -> str:
        out = self.collection.rsplit(".", 1)[-1]
        for seg in self.path:
            if isinstance(seg, int):
                out += f"[{seg}]"
            elif re.match(r"^[A-Za-z_$][A-Za-z0-9_$]*$", seg):
                out += f".{seg}"
            else:
                out += f"[{json.dumps(seg)}]"
        return out


def _walk(
    schema: dict, path: tuple, nsid: str, collection: str, union: str | None, out: list[Limit], depth: int = 0
) -> None:
    assert depth < 20
    t = schema.get("type")
    if t == "record":
        return _walk(schema["record"], path, nsid, collection, union, out, depth + 1)
    if t == "ref":
        rnsid, _, rdef = LEX.get_def(schema["ref"], context=nsid)
        return _walk(rdef, path, rnsid, collection, union, out, depth + 1)
    if t == "union":
        for ref in schema.get("refs", []):
            rnsid, name, rdef = LEX.get_def(ref, context=nsid)
            member = ref if "#" in ref else f"{ref}"
            _walk(rdef, path, rnsid, collection, member if path == ("storage",) else union, out, depth + 1)
        return
    sj = json.dumps({k: v for k, v in schema.items() if k != "description"}, sort_keys=True)

    def add(kind: str, value: Any = None) -> None:
        out.append(Limit(collection, union, path, kind, value, sj))

    if t == "object":
        for req in schema.get("required", []):
            out.append(Limit(collection, union, path + (req,), "required", None, sj))
        for key, sub in schema.get("properties", {}).items():
            _walk(sub, path + (key,), nsid, collection, union, out, depth + 1)
        if path:
            add("type")
    elif t == "string":
        for kind in (
            "maxLength",
            "minLength",
            "maxGraphemes",
            "minGraphemes",
            "format",
            "const",
            "enum",
            "pattern",
        ):
            if kind in schema:
                add(kind, schema[kind])
        add("type")
    elif t == "integer":
        for kind in ("minimum", "maximum", "const", "enum"):
            if kind in schema:
                add(kind, schema[kind])
        add("type")
    elif t == "array":
        for kind in ("maxLength", "minLength"):
            if kind in schema:
                add(kind, schema[kind])
        add("type")
        if schema.get("items"):
            _walk(schema["items"], path + (0,), nsid, collection, union, out, depth + 1)
    elif t == "blob":
        for kind in ("maxSize", "accept"):
            if kind in schema:
                add(kind, schema[kind])
    elif t == "bytes":
        if "maxLength" in schema:
            add("maxLength-bytes", schema["maxLength"])
    elif t in ("unknown", "boolean"):
        add("type")


def all_limits() -> list[Limit]:
    out: list[Limit] = []
    for collection in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID):
        nsid, _, main = LEX.get_def(collection)
        _walk(main, (), nsid, collection, None, out)
    return out


def _bases() -> dict[tuple[str, str | None], dict]:
    from tests.reliability.fuzz_targets import Everything

    schema_uri = f"at://{DID}/{rec.SCHEMA_NSID}/{rec.schema_rkey('Everything', '1.0.0')}"
    common = dict(
        description="d",
        tags=["t"],
        license="MIT",
        size={"samples": 1, "bytes": 2, "shards": 1},
        metadata={"split": "train"},
        content_cid="bafyreiabc",
        metadata_schema_ref=schema_uri,
    )
    blob = {
        "$type": "blob",
        "ref": {"$link": "bafkreiabcdefghijklmnop"},
        "mimeType": "application/x-tar",
        "size": 10,
    }
    common["manifests"] = [
        rec.manifest_ref(
            {**blob, "mimeType": rec.MANIFEST_HEADER_MIME}, {**blob, "mimeType": rec.MANIFEST_ROWS_MIME}
        )
    ]
    storages = {
        rec.STORAGE_HTTP: rec.storage_http([("https://example.org/a.tar", SHA)]),
        rec.STORAGE_S3: rec.storage_s3(
            "bucket", [("k/a.tar", SHA)], region="r", endpoint="https://s3.example.org"
        ),
        rec.STORAGE_BLOBS: rec.storage_blobs([{"blob": blob, "sha256": SHA}]),
    }
    out: dict[tuple[str, str | None], dict] = {
        (rec.SCHEMA_NSID, None): rec.schema_record(
            Everything.schema().to_record(), license="MIT", tags=["t"]
        ),
        (rec.LABEL_NSID, None): rec.label_record(
            "x", f"at://{DID}/{rec.ENTRY_NSID}/3kabcdefghijk", version="1.0.0", description="d"
        ),
    }
    for member, storage in storages.items():
        out[(rec.ENTRY_NSID, member)] = rec.entry_record("x", schema_uri, storage, **common)
    out[(rec.ENTRY_NSID, None)] = out[(rec.ENTRY_NSID, rec.STORAGE_HTTP)]
    return out


BASES = _bases()


def _get(value: Any, path: tuple) -> Any:
    for seg in path:
        value = value[seg]
    return value


def _set(value: Any, path: tuple, new: Any, delete: bool = False) -> None:
    parent = _get(value, path[:-1])
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new


def violate(limit: Limit) -> tuple[dict, list[str]]:
    """A copy of a valid record breaking ``limit``, and words its error message must contain."""
    record = copy.deepcopy(BASES[(limit.collection, limit.union)])
    schema = json.loads(limit.schema_json)
    k, v = limit.kind, limit.value
    if k == "required":
        _set(record, limit.path, None, delete=True)
        return record, ["required"]
    if k == "maxLength":
        if schema["type"] == "array":
            item = _get(record, limit.path)[0]
            _set(record, limit.path, [copy.deepcopy(item) for _ in range(v + 1)])
            return record, [f"{v + 1} items", str(v)]
        _set(record, limit.path, "x" * (v + 1))
        return record, [str(v)]
    if k == "maxLength-bytes":
        _set(record, limit.path, bytes(v + 1))
        return record, [str(v)]
    if k == "minLength":
        _set(record, limit.path, [] if schema["type"] == "array" else "x" * (v - 1))
        return record, [str(v)]
    if k == "maxGraphemes":
        _set(record, limit.path, "x" * (v + 1))
        return record, [str(v)]
    if k == "format":
        _set(record, limit.path, "not a valid value")
        return record, [v]
    if k == "const":
        _set(record, limit.path, "wrong")
        return record, [json.dumps(v)]
    if k == "enum":
        _set(record, limit.path, "zz-not-listed")
        return record, ["not one of"]
    if k == "pattern":
        _set(record, limit.path, "not-a-version")
        return record, ["pattern"]
    if k == "minimum":
        _set(record, limit.path, v - 1)
        return record, ["minimum", str(v)]
    if k == "maximum":
        _set(record, limit.path, v + 1)
        return record, ["maximum", str(v)]
    if k == "maxSize":
        _set(record, limit.path + ("size",), v + 1)
        return record, [f"{v:,}"]
    if k == "accept":
        _set(record, limit.path + ("mimeType",), "text/x-not-accepted")
        return record, ["not accepted"]
    if k == "type":
        wrong = {
            "string": 12345,
            "integer": "12",
            "array": "not a list",
            "object": "not an object",
            "unknown": "not an object",
            "boolean": "yes",
        }[schema["type"]]
        _set(record, limit.path, wrong)
        return record, ["union"] if limit.path[-1:] == ("$type",) else ["expected"]
    raise AssertionError(f"no violation for {limit}")


def _is_union_tag(limit: Limit) -> bool:
    """The ``$type`` of a union member selects the member: another value is another (unknown) member,
    which an open union accepts unchecked, so its ``const`` is not a limit that can be broken."""
    return limit.path[-1:] == ("$type",) and limit.kind == "const"


LIMITS = [lim for lim in all_limits() if not _is_union_tag(lim)]


@pytest.fixture(scope="module")
def client(sandbox):
    acct = sandbox.create_account()
    c = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)
    yield c
    c.close()


def test_every_lexicon_limit_is_refused_before_any_request_naming_field_and_limit(client, report_table):
    assert len(LIMITS) > 80, len(LIMITS)  # the walker found the lexicons' limits
    by_kind: Counter[str] = Counter()
    problems = []
    client.round_trips = 0
    for limit in LIMITS:
        record, words = violate(limit)
        for send in ("validate", "create_record", "apply_writes"):
            try:
                if send == "validate":
                    validate_record(record, limit.collection)
                elif send == "create_record":
                    client.create_record(limit.collection, record, rkey="3kabcdefghijk")
                else:
                    client.apply_writes(
                        [
                            {
                                "action": "create",
                                "collection": limit.collection,
                                "rkey": "3kabcdefghijk",
                                "value": record,
                            }
                        ]
                    )
                problems.append(f"{limit.where} {limit.kind}: accepted by {send}")
                continue
            except RecordValidationError as e:
                msg = str(e)
            if limit.where not in msg or not all(w in msg for w in words):
                problems.append(
                    f"{limit.where} {limit.kind}={limit.value!r} via {send}: {msg!r} lacks {words}"
                )
        by_kind[f"{limit.collection.rsplit('.', 1)[-1]}:{limit.kind}"] += 1
    sent = client.round_trips
    rows = [(k.split(":")[0], k.split(":")[1], n) for k, n in sorted(by_kind.items())]
    report_table(
        "Lexicon limits refused before any request (read from the bundled lexicons; each via validate_record, "
        "create_record and apply_writes)",
        ("record", "limit kind", "limits"),
        rows,
        note=f"{len(LIMITS)} limits x 3 paths; requests sent to the PDS: {sent}; "
        f"messages missing the field or the limit: {len(problems)}",
    )
    assert not problems, "\n".join(problems[:20])
    assert sent == 0


# ------------------------------------------------------------------------------------------------
# invalid names
# ------------------------------------------------------------------------------------------------

NAMES = [
    # (what, call, words the error must contain)
    (
        "dataset name: empty",
        lambda ix, c: ix.write(samples(2), name="", progress=False),
        ["dataset name", "200"],
    ),
    (
        "dataset name: a path",
        lambda ix, c: ix.write(samples(2), name="../up", progress=False),
        ["dataset name"],
    ),
    ("dataset name: 201 chars", lambda ix, c: ix.write(samples(2), name="n" * 201, progress=False), ["200"]),
    ("dataset name: space", lambda ix, c: ix.write(samples(2), name="a b", progress=False), ["dataset name"]),
    ("promotion name: empty", lambda ix, c: ix.plan_promotion("ok", name=""), ["name"]),
    ("promotion name: 201 bytes", lambda ix, c: ix.plan_promotion("ok", name="é" * 101), ["name", "200"]),
    ("tag: empty", lambda ix, c: ix.plan_promotion("ok", tags=["a", ""]), ["tags[1]"]),
    ("tag: 151 bytes", lambda ix, c: ix.plan_promotion("ok", tags=["t" * 151]), ["tags[0]", "150"]),
    ("tags: 31", lambda ix, c: ix.plan_promotion("ok", tags=[f"t{i}" for i in range(31)]), ["tags", "30"]),
    ("tags: one string", lambda ix, c: ix.plan_promotion("ok", tags="abc"), ["tags"]),
    ("license: not SPDX", lambda ix, c: ix.plan_promotion("ok", license="MIT-ish"), ["license"]),
    (
        "description: 5001 bytes",
        lambda ix, c: ix.plan_promotion("ok", description="d" * 5001),
        ["description", "5000"],
    ),
    ("schema version: not semver", lambda ix, c: ix.publish_schema(_Sample, version="1.0"), ["version"]),
    (
        "record key: space",
        lambda ix, c: c.create_record(rec.LABEL_NSID, BASES[(rec.LABEL_NSID, None)], rkey="a b"),
        ["rkey"],
    ),
    (
        "record key: '..'",
        lambda ix, c: c.create_record(rec.LABEL_NSID, BASES[(rec.LABEL_NSID, None)], rkey=".."),
        ["rkey"],
    ),
    (
        "record key: 513 chars",
        lambda ix, c: c.put_record(rec.LABEL_NSID, "k" * 513, BASES[(rec.LABEL_NSID, None)]),
        ["rkey"],
    ),
    (
        "record key: trailing newline (get_record)",
        lambda ix, c: c.get_record(rec.LABEL_NSID, "abc\n"),
        ["rkey"],
    ),
    (
        "dataset name: trailing newline",
        lambda ix, c: ix.write(samples(2), name="ok\n", progress=False),
        ["dataset name"],
    ),
    (
        "handle: trailing newline (load_dataset)",
        lambda ix, c: atdata.load_dataset(f"@{c.handle}\n/x", index=ix),
        ["handle"],
    ),
    (
        "at-uri: record key with a newline (load_dataset)",
        lambda ix, c: atdata.load_dataset(f"at://{c.did}/{rec.ENTRY_NSID}/a\n", index=ix),
        ["record key"],
    ),
    (
        "collection: not an NSID",
        lambda ix, c: c.create_record("not an nsid", {"a": 1}),
        ["collection", "NSID"],
    ),
    (
        "collection: one segment",
        lambda ix, c: c.apply_writes([{"action": "delete", "collection": "entry", "rkey": "3kabcdefghijk"}]),
        ["collection", "NSID"],
    ),
    (
        "collection: $type differs",
        lambda ix, c: c.create_record(rec.LABEL_NSID, {**BASES[(rec.ENTRY_NSID, None)]}),
        ["$type"],
    ),
    (
        "at-uri: bad DID",
        lambda ix, c: c.create_record(
            rec.LABEL_NSID, {**BASES[(rec.LABEL_NSID, None)], "datasetUri": "at://did:nope/x.y.z/k"}
        ),
        ["datasetUri", "at-uri"],
    ),
]


@atdata.packable
class _Sample:
    x: int


def test_every_invalid_name_is_refused_before_any_request(client, tmp_path, report_table):
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    index.write(samples(3), name="ok", progress=False)
    rows, problems = [], []
    for what, call, words in NAMES:
        client.round_trips = 0
        try:
            call(index, client)
            err: Exception | None = None
        except Exception as e:  # noqa: BLE001 - checked below
            err = e
        sent = client.round_trips
        ok = (
            isinstance(err, AtdataLabError)
            and isinstance(err, ValueError)
            and all(w in str(err) for w in words)
            and sent == 0
        )
        rows.append((what, type(err).__name__ if err else "accepted", sent, "ok" if ok else "FAIL"))
        if not ok:
            problems.append(f"{what}: {err!r} (requests: {sent})")
    report_table("Invalid names refused before any request", ("input", "error", "requests", "result"), rows)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------------
# floats anywhere
# ------------------------------------------------------------------------------------------------

keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8)),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(keys, c, max_size=4)),
    max_leaves=20,
)


@st.composite
def with_a_float(draw) -> tuple[dict, str]:
    """A dict of plain values with one float put somewhere; returns it and the float's path."""
    root = draw(st.dictionaries(keys, plain, min_size=1, max_size=4))
    path = ""
    node: Any = root
    while True:
        if isinstance(node, dict):
            k = draw(keys)
            nxt = node.get(k)
            seg = f".{k}"
            if not isinstance(nxt, (dict, list)) or draw(st.booleans()):
                node[k] = draw(st.floats(allow_nan=True, allow_infinity=True))
                return root, path + seg
            node, path = nxt, path + seg
        else:
            if not node or draw(st.booleans()):
                node.append(draw(st.floats()))
                return root, path + f"[{len(node) - 1}]"
            i = draw(st.integers(0, len(node) - 1))
            if not isinstance(node[i], (dict, list)):
                node[i] = draw(st.floats())
                return root, path + f"[{i}]"
            node, path = node[i], path + f"[{i}]"


def test_a_float_anywhere_is_refused_before_any_request_naming_its_path(client, tmp_path, report_table):
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    index.write(samples(3), name="ok", progress=False)
    seen = Counter()

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(with_a_float())
    def check(case: tuple[dict, str]) -> None:
        value, path = case
        client.round_trips = 0
        for where, call, prefix in (
            ("promotion metadata", lambda: index.plan_promotion("ok", metadata=value), "metadata"),
            (
                "entry contentMetadata",
                lambda: client.create_record(
                    rec.ENTRY_NSID, {**BASES[(rec.ENTRY_NSID, None)], "contentMetadata": value}
                ),
                "entry.contentMetadata",
            ),
            ("record of another collection", lambda: client.create_record("org.example.any", value), "any"),
            (
                "applyWrites value",
                lambda: client.apply_writes(
                    [{"action": "create", "collection": "org.example.any", "value": value}]
                ),
                "any",
            ),
        ):
            with pytest.raises(RecordValidationError) as ei:
                call()
            assert f"{prefix}{path}:" in str(ei.value) and "float" in str(ei.value), (
                where,
                path,
                str(ei.value),
            )
            seen[where] += 1
        assert client.round_trips == 0

    check()
    report_table(
        "A float anywhere in a record (150 generated records with one float at a random depth)",
        ("sent through", "refused, naming the float's path", "requests"),
        [(k, n, 0) for k, n in seen.items()],
    )
