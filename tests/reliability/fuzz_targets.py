"""Fuzz targets for the project's readers, run by ``test_fuzz.py`` in a child process.

``python -m tests.reliability.fuzz_targets TARGET --examples N --headroom-mb M`` imports everything,
then caps the process's address space (``RLIMIT_AS``) at its current size plus ``M`` MiB, and runs
``N`` hypothesis examples against one reader. For every example:

* the reader may succeed or raise the project's own errors (:class:`AtdataLabError`); anything else
  (``ValueError`` from numpy, ``OverflowError``, ``MemoryError``, ``UnicodeError``...) fails;
* a project error must not hide a ``MemoryError`` in its cause/context chain (an allocation of a
  declared size that happened to fail);
* the peak of Python-tracked allocations (numpy reports its buffers to ``tracemalloc``) must stay
  under ``64 x len(input) + 8 MiB`` (one read chunk): memory follows the bytes present, never a declared size;
* hypothesis's per-example deadline catches slow inputs, the parent's timeout catches hangs.

The last line of output is a JSON summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tarfile
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Optional

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import records as rec
from atdata_lab.atmosphere.lexicon import validate_record
from atdata_lab.errors import AtdataLabError
from atdata_lab.ndarray_codec import decode_ndarray, encode_ndarray, parse_ndarray_header
from atdata_lab.sample import DictSample, codec_for
from atdata_lab.schema import Schema
from atdata_lab.shards import iter_sample_members, scan_shard
from atdata_lab.tar import END_OF_ARCHIVE, iter_members, ustar_header

PEAK_FACTOR = 64
PEAK_SLACK = 8 << 20  # one 4 MiB read chunk of the tar reader, plus change
TMP = tempfile.mkdtemp(prefix="atdata-fuzz-")


@atdata.packable
class Everything:
    """One field of every kind the sample decoder knows."""

    text: str
    number: int
    real: float
    flag: bool
    raw: bytes
    array: NDArray
    typed: NDArray[np.float32]
    maybe: Optional[str] = None  # noqa: UP045 - the Optional form is what users write
    arrays: Optional[list[NDArray]] = None  # noqa: UP045
    table: Optional[dict[str, Any]] = None  # noqa: UP045


class Stats:
    def __init__(self) -> None:
        self.examples = 0
        self.ok = 0
        self.project_errors: dict[str, int] = {}
        self.max_peak = 0
        self.max_input = 0


# ----------------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(
        [
            "",
            "x" * 5001,
            "é" * 120,
            "1.0.0",
            "not a version",
            "at://did:plc:abc/x.y.z/3kabc",
            "2024-01-01T00:00:00Z",
            "local#ndarray",
            "local#primitive",
            "<f4",
            "O",
            "V8",
            "f4,i4",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)


def _nest(n: int, kind: str) -> Any:
    v: Any = 1
    for _ in range(n):
        v = [v] if kind == "list" else {"items": v, "$type": "local#array"} if kind == "dict" else {"k": v}
    return v


deep_values = st.builds(_nest, st.integers(30, 3000), st.sampled_from(["list", "dict", "map"]))


def _paths(value: Any, max_depth: int = 64) -> list[tuple]:
    """Every place in a JSON value a mutation can hit, down to ``max_depth`` (iterative: a mutated
    value may already hold one of the 3000-deep ``deep_values``)."""
    out: list[tuple] = []
    stack: list[tuple[Any, tuple]] = [(value, ())]
    while stack:
        node, prefix = stack.pop()
        out.append(prefix)
        if len(prefix) >= max_depth:
            continue
        if isinstance(node, dict):
            stack += [(v, prefix + (k,)) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, prefix + (i,)) for i, v in enumerate(node)]
    out.sort(key=lambda p: (len(p), repr(p)))  # a stable order, so hypothesis replays the same choice
    return out


def _set(value: Any, path: tuple, new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if delete and not rest:
            out.pop(head, None)
        else:
            out[head] = _set(value[head], rest, new, delete)
        return out
    out = list(value)
    if delete and not rest:
        out.pop(head)
    else:
        out[head] = _set(value[head], rest, new, delete)
    return out


@st.composite
def mutated_json(draw: Any, bases: list[Any]) -> Any:
    """A valid record with 1-3 values replaced, deleted or given extra keys."""
    value = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 20)) == 0:  # now and then a very deep value somewhere
            path = draw(st.sampled_from(_paths(value)))
            value = _set(value, path, draw(deep_values), False)
            continue
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "delete", "add"]))
        if kind == "delete" and path:
            value = _set(value, path, None, True)
        elif kind == "add":
            target = value
            for p in path:
                target = target[p]
            if isinstance(target, dict):
                value = _set(value, path, {**target, draw(st.text(max_size=8)): draw(json_values)}, False)
            elif isinstance(target, list):
                value = _set(value, path, [*target, draw(json_values)], False)
            else:
                value = _set(value, path, draw(json_values), False)
        else:
            value = _set(value, path, draw(json_values), False)
    return value


@st.composite
def mutated_bytes(draw: Any, bases: list[bytes]) -> bytes:
    """A valid byte string with a few bytes changed, a slice cut out, or the end truncated."""
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "truncate", "cut", "splice"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, ord("7"), ord(" "), ord("x"), ord("L")]))
        elif op == "truncate":
            del data[i:]
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 600))]
        else:
            data[i:i] = draw(st.binary(max_size=64))
    return bytes(data)


# ----------------------------------------------------------------------------------- tar reader


def _tar_bases() -> list[bytes]:
    members = [
        ("a/000000.msgpack", b"\x81\xa1x\x01"),
        ("000001.msgpack", bytes(700)),
        ("000002.txt", b"hello"),
    ]
    ours = b"".join(ustar_header(n, len(d)) + d + bytes(-len(d) % 512) for n, d in members) + END_OF_ARCHIVE
    bases = [ours]
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for n, d in [("x" * 120 + "/000000.msgpack", b"\x80"), ("é/000001.msgpack", b"\x80" * 3)]:
                info = tarfile.TarInfo(n)
                info.size = len(d)
                if fmt == tarfile.PAX_FORMAT:
                    info.pax_headers = {"comment": "z" * 30}
                tf.addfile(info, io.BytesIO(d))
        bases.append(buf.getvalue())
    hostile = bytearray(ustar_header("000000.msgpack", 0))
    for size_field in (bytes([0x80]) + (2**80).to_bytes(11, "big"), b"77777777777\x00", b"-0000000001\x00"):
        h = bytearray(hostile)
        h[124:136] = size_field
        h[148:156] = b" " * 8
        h[148:156] = b"%06o\x00 " % sum(h)
        bases.append(bytes(h) + bytes(1024))
    return bases


TAR_BASES = _tar_bases()


def read_tar(data: bytes) -> None:
    list(iter_members(io.BytesIO(data), "fuzz.tar"))
    list(iter_members(io.BytesIO(data), "fuzz.tar", with_data=False))
    path = os.path.join(TMP, "fuzz.tar")
    with open(path, "wb") as f:
        f.write(data)
    for _ in iter_sample_members(path):
        pass
    scan_shard(path)


# ----------------------------------------------------------------------------------- samples

_rng = np.random.default_rng(0)


def _everything(big: bool) -> Everything:
    n = 4096 if big else 8
    return Everything(
        text="t",
        number=3,
        real=0.5,
        flag=True,
        raw=b"\x00\x01",
        array=_rng.standard_normal(n),
        typed=np.ones((2, 3), np.float32),
        maybe=None,
        arrays=[np.arange(3), np.zeros((2, 2))],
        table={"k": [1, "v"]},
    )


SAMPLE_BASES = [
    _everything(False).packed,
    _everything(True).packed,
    msgpack.packb({"a": encode_ndarray(np.arange(5)), "b": "x"}, use_bin_type=True),
]
NDARRAYISH = st.builds(
    lambda d, ndim, shape, tail: bytes([len(d)]) + d + bytes([ndim]) + shape + tail,
    st.sampled_from([b"<f4", b"|u1", b"<U0", b"O", b"|V8", b"f4,i4", b"\xff"]),
    st.integers(0, 40),
    st.binary(max_size=64),
    st.binary(max_size=64),
)
sample_maps = st.dictionaries(
    st.sampled_from(
        ["text", "number", "real", "flag", "raw", "array", "typed", "maybe", "arrays", "table", "x"]
    ),
    st.one_of(json_values, st.binary(max_size=64), NDARRAYISH, st.lists(NDARRAYISH, max_size=3)),
    max_size=10,
)


def _packed(m: dict) -> bytes:
    try:
        return msgpack.packb(m, use_bin_type=True)
    except (ValueError, OverflowError, TypeError, UnicodeEncodeError):
        return msgpack.packb({}, use_bin_type=True)


def _all(*calls: Callable[[], Any]) -> None:
    """Run every call; then re-raise the last project error, if any (so it is counted)."""
    last: AtdataLabError | None = None
    for call in calls:
        try:
            call()
        except AtdataLabError as e:
            last = e
    if last is not None:
        raise last


def decode_sample(data: bytes) -> None:
    _all(
        lambda: codec_for(Everything).unpack(data),
        lambda: codec_for(DictSample).unpack(data),
        lambda: _read_as_dataset(data),
    )


def _read_as_dataset(data: bytes) -> None:
    # the batch reader, on a real shard holding this sample (twice, so a batch has two rows)
    path = os.path.join(TMP, "sample.tar")
    with open(path, "wb") as f:
        for i in range(2):
            f.write(ustar_header(f"{i:06d}.msgpack", len(data)) + data + bytes(-len(data) % 512))
        f.write(END_OF_ARCHIVE)
    calls = []
    for cls in (Everything, DictSample):
        ds = atdata.Dataset[cls](path)
        calls += [lambda ds=ds: list(ds.ordered(batch_size=2)), lambda ds=ds: list(ds)]
    # the direct batch reader (arrays read straight into the batch; large samples, offsets known):
    # hostile bytes over the framing at the start and at the end of a large sample between two good ones
    n = min(len(data), 48)
    for i, bad in enumerate((data[:n] + _BIG[n:], _BIG[: len(_BIG) - n] + data[len(data) - n :])):
        big = os.path.join(TMP, f"big-{i}.tar")
        with open(big, "wb") as f:
            for member in (_BIG, bad, _BIG):
                f.write(
                    ustar_header(f"{f.tell():06d}.msgpack", len(member)) + member + bytes(-len(member) % 512)
                )
            f.write(END_OF_ARCHIVE)
        for cls in (Everything, DictSample):
            ds = atdata.Dataset[cls](big)
            calls.append(lambda ds=ds, big=big: (ds.shard_info(big), list(ds.ordered(batch_size=3))))
    _all(*calls)


_BIG = msgpack.packb(
    {"array": encode_ndarray(np.arange(6000, dtype=np.float32)), "text": "t", "number": 1}, use_bin_type=True
)


# ----------------------------------------------------------------------------------- NDArray header

_SHAPE_VALUES = [0, 1, 2, 3, 7, 2**31, 2**40, 2**62, 2**63 - 1, -1, -(2**63)]
_DTYPES = [
    b"<f4",
    b">f8",
    b"|u1",
    b"|b1",
    b"<c16",
    b"<U4",
    b"|S3",
    b"<M8[ns]",
    b"<m8[as]",
    b"O",
    b"|O",
    b"|V8",
    b"<U0",
    b"|S0",
    b"f4,i4",
    b"(2,)f4",
    b"[('a','<f4')]",
    b"garbage",
    b"\xff\xfe",
    b"",
    b"<f4" * 80,
]


@st.composite
def ndarray_payloads(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["compact", "npy", "random", "valid"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "valid":
        dt = draw(st.sampled_from(["<f4", "|u1", "<i8", "<U3", "|S2", "<c8", "|b1"]))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
        return draw(mutated_bytes([encode_ndarray(np.zeros(shape, dtype=dt))]))
    if kind == "compact":
        d = draw(st.sampled_from(_DTYPES))
        ndim = draw(st.integers(0, 255))
        dims = draw(st.lists(st.sampled_from(_SHAPE_VALUES), min_size=0, max_size=min(ndim, 40)))
        shape = b"".join(int(x).to_bytes(8, "little", signed=True) for x in dims)
        return bytes([min(len(d), 255)]) + d[:255] + bytes([ndim]) + shape + draw(st.binary(max_size=128))
    descr = draw(st.sampled_from(["<f8", "|u1", "O", "|O", "<U0", "V8", "[('a', '<f4')]", "garbage", "<f4"]))
    dims = tuple(draw(st.lists(st.sampled_from(_SHAPE_VALUES + [5]), max_size=40)))
    fortran = draw(st.sampled_from(["False", "True", "1", "'x'"]))
    shape_text = draw(st.sampled_from([repr(dims), "(2**40,)", "[3]", "(1, 'a')", "None"]))
    header = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]))
    hlen = draw(st.sampled_from([len(header), 0, 2**16 - 1, 2**31]))
    width = 2 if version[0] == 1 else 4
    head = b"\x93NUMPY" + bytes(version) + (hlen % (1 << (8 * width))).to_bytes(width, "little")
    return head + header.encode("latin1") + draw(st.binary(max_size=128))


def decode_array(data: bytes) -> None:
    try:
        parse_ndarray_header(data)
    except AtdataLabError:
        pass
    try:
        decode_ndarray(data)
    except AtdataLabError:
        pass
    decode_ndarray(memoryview(data), copy=False)


# ----------------------------------------------------------------------------------- records


def _record_bases() -> dict[str, list[Any]]:
    from tests.support.fixtures import FIXTURES

    local = Everything.schema().to_record()
    schema = rec.schema_record(local)
    did = "did:plc:abcdefghijklmnopqrstuvwx"
    schema_uri = f"at://{did}/{rec.SCHEMA_NSID}/{rec.schema_rkey('Everything', '1.0.0')}"
    sha = "ab" * 32
    entries = [
        rec.entry_record(
            "fuzz",
            schema_uri,
            rec.storage_http([("https://example.org/a.tar", sha)]),
            description="d",
            tags=["t"],
            license="MIT",
            size={"samples": 1, "bytes": 2, "shards": 1},
            metadata={"split": "train", "k": [1, "x"]},
            content_cid="bafyreiabc",
        ),
        rec.entry_record(
            "fuzz",
            schema_uri,
            rec.storage_s3("bucket", [("k/a.tar", sha)], region="r", endpoint="http://127.0.0.1:9000"),
        ),
        rec.entry_record(
            "fuzz",
            schema_uri,
            rec.storage_blobs(
                [
                    {
                        "blob": {
                            "$type": "blob",
                            "ref": {"$link": "bafkreiabcdefghijklmnop"},
                            "mimeType": "application/x-tar",
                            "size": 10,
                        },
                        "sha256": sha,
                    }
                ]
            ),
        ),
    ]
    label = rec.label_record("fuzz", f"at://{did}/{rec.ENTRY_NSID}/3kabcdefghijk", version="1.0.0")
    atdata_records = []
    records_json = FIXTURES / "records.json"
    if records_json.exists():
        atdata_records = [r["record"] for r in json.loads(records_json.read_text())]
    return {
        "schema": [schema] + [r for r in atdata_records if r.get("$type") == rec.SCHEMA_NSID],
        "local": [local],
        "entry": entries + [r for r in atdata_records if r.get("$type") == rec.ENTRY_NSID],
        "label": [label] + [r for r in atdata_records if r.get("$type") == rec.LABEL_NSID],
    }


RECORDS = _record_bases()


def parse_schema(value: Any) -> None:
    if isinstance(value, tuple):  # ("local", record): a local schema record
        Schema.from_record(value[1]).to_type()
        return
    schema = Schema.from_record(rec.local_schema_from_record(value))
    schema.content_cid()
    schema.to_type()


def validate_any(value: Any) -> None:
    _all(
        *[
            lambda nsid=nsid: validate_record(value, nsid)
            for nsid in (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID)
        ],
        lambda: rec.entry_from_record(value),
        lambda: rec.label_from_record(value),
        lambda: validate_record(value),
    )


def _size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(json.dumps(value, default=repr, ensure_ascii=True))
    except (TypeError, ValueError, RecursionError):
        return 1 << 16


# ----------------------------------------------------------------------------------- record-derived locations

_HOSTILE_LOCATIONS = [
    "file:///etc/passwd",
    "/etc/passwd",
    "../../data/precious/precious-000000.tar",
    "~/.ssh/id_rsa",
    "file://localhost/etc/passwd",
    "local:///etc/passwd",
    "memory://x.tar",
    "simplecache::https://example.org/x.tar",
    "https://example.org/x.tar::file:///etc/passwd",
    "http://127.0.0.1/x.tar",
    "http://localhost:8080/x.tar",
    "http://[::1]/x.tar",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:7f00:1]/x",
    "http://169.254.169.254/latest/",
    "http://0.0.0.0/",
    "http://0/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[fe80::1%25eth0]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://evil.example@127.0.0.1/x",
    "http://127.0.0.1#@evil.example/x",
    "http://127.0.0.1\\@evil.example/",
    "HTTP://LOCALHOST/x",
    "http://internal.corp/x",
    "https://example.org/x.tar",
    "https://93.184.216.34/x.tar",
    "s3://bucket/key.tar",
    "s3://b/../../etc/passwd",
    "s3://",
    "s3:///key",
    "https://exa mple.org/x",
    "https://example.org:99999/x",
    "http://[::1/x",
    "http://:80/x",
    "ftp://example.org/x.tar",
    "data:text/plain,hi",
    "https://\u0435xample.org/x",
    "https://example.org/\x00",
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    "BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU",
    "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\n",
    "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",
]
_URL_CHARS = "abcxyz019:/.@[]%#?\\-_~ \n\x00é"
locations = st.one_of(
    st.sampled_from(_HOSTILE_LOCATIONS),
    st.text(alphabet=_URL_CHARS, max_size=60),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
        st.sampled_from(["http://", "https://", "s3://", "file://", "", "HtTpS://", "local://", "http:/"]),
        st.sampled_from(
            [
                "127.0.0.1",
                "localhost",
                "example.org",
                "internal.corp",
                "[::1]",
                "10.1.1.1",
                "0x7f.1",
                "2130706433",
                "[::ffff:169.254.169.254]",
                "93.184.216.34",
                "",
                "user:pw@example.org",
                "a" * 300,
                "xn--80ak6aa92e.com",
                "bucket",
            ]
        ),
        st.sampled_from(["", ":80", ":0", ":65536", ":-1", ":x"]),
        st.sampled_from(["/x.tar", "", "/../../etc/passwd", "/a::b", "?q=1#f", "/%2e%2e/x"]),
    ),
)


def _fake_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list:
    """Numeric hosts as the C library reads them; names from a fixed table (no network)."""
    import socket as _socket

    try:
        return _socket.getaddrinfo(host, port, *args, flags=_socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        pass
    table = {"localhost": "127.0.0.1", "internal.corp": "10.0.0.7", "example.org": "93.184.216.34"}
    addr = table.get(str(host).lower().rstrip("."))
    if addr is None:
        raise _socket.gaierror(_socket.EAI_NONAME, "not in the fuzzer's table")
    return [(_socket.AF_INET, _socket.SOCK_STREAM, 6, "", (addr, port or 0))]


def _entry_bases() -> list[Any]:
    sha = "ab" * 32
    return [
        {
            "$type": rec.STORAGE_HTTP,
            "shards": [
                {"url": "https://example.org/a.tar", "checksum": {"algorithm": "sha256", "digest": sha}}
            ],
        },
        {
            "$type": rec.STORAGE_S3,
            "bucket": "bucket",
            "endpoint": "https://s3.example.org",
            "shards": [{"key": "k/a.tar", "checksum": {"algorithm": "sha256", "digest": sha}}],
        },
        {
            "$type": rec.STORAGE_BLOBS,
            "blobs": [
                {
                    "blob": {
                        "$type": "blob",
                        "ref": {"$link": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
                        "mimeType": "x/y",
                        "size": 1,
                    }
                }
            ],
        },
        {"$type": rec.STORAGE_EXTERNAL, "urls": ["https://example.org/a.tar"]},
    ]


@st.composite
def record_locations(draw: Any) -> Any:
    """An entry's storage with its URLs, keys, endpoint and blob CIDs replaced by hostile locations."""
    storage = json.loads(json.dumps(draw(st.sampled_from(_entry_bases()))))
    where = draw(st.sampled_from(["url", "key", "endpoint", "cid", "bucket", "none"]))
    loc = draw(locations)
    if storage["$type"] == rec.STORAGE_HTTP and where == "url":
        storage["shards"][0]["url"] = loc
    elif storage["$type"] == rec.STORAGE_S3 and where in ("key", "endpoint", "bucket"):
        if where == "key":
            storage["shards"][0]["key"] = loc
        else:
            storage[where] = loc
    elif storage["$type"] == rec.STORAGE_BLOBS and where == "cid":
        storage["blobs"][0]["blob"]["ref"]["$link"] = loc
    elif storage["$type"] == rec.STORAGE_EXTERNAL:
        storage["urls"][0] = loc
    return draw(mutated_json([storage])) if draw(st.integers(0, 3)) == 0 else storage


def _check_location(url: str) -> None:
    """Invariants of a location the policy accepted from someone else's record."""
    from urllib.parse import urlsplit

    assert "::" not in url and "://" in url, f"accepted {url!r}"
    scheme = url.split("://", 1)[0].lower()
    assert scheme in ("http", "https", "s3"), f"accepted the scheme of {url!r}"
    if scheme != "s3":
        import ipaddress

        import httpx

        host = urlsplit(url).hostname or ""
        assert httpx.URL(url).host == host, f"accepted {url!r}: httpx and urllib read different hosts"
        for info in _fake_getaddrinfo(host, 443):
            ip = ipaddress.ip_address(info[4][0].split("%")[0])
            v4 = getattr(ip, "ipv4_mapped", None) or ip
            for a in {ip, v4}:  # an oracle of its own, not the library's classification
                assert not (
                    a.is_loopback
                    or a.is_private
                    or a.is_link_local
                    or a.is_multicast
                    or a.is_unspecified
                    or a.is_reserved
                    or a in ipaddress.ip_network("100.64.0.0/10")
                ), f"accepted {url!r}, whose host resolves to {ip}"


def read_locations(value: Any) -> None:
    from atdata_lab import urls
    from atdata_lab.cache import blob_path
    from atdata_lab.cid import parse_blob_cid
    from atdata_lab.promotion import _plan_shards
    from atdata_lab.stores.local import atdata_home
    from atdata_lab.urls import TrustPolicy, check_remote_url

    urls._getaddrinfo = _fake_getaddrinfo
    policy = TrustPolicy()
    if isinstance(value, str):
        calls = [
            lambda: _check_location(check_remote_url(value, trusted=policy, record_uri="at://fuzz")),
            lambda: _check_blob(blob_path(parse_blob_cid(value)), atdata_home()),
        ]
        _all(*calls)
        return
    storage = rec.parse_storage(value)
    plan = _plan_shards(
        storage, uri="at://did:plc:fuzz/science.alt.dataset.entry/x", own=False, policy=policy
    )
    for loc in plan.urls:
        if plan.kind == "blobs":
            _check_blob(blob_path(parse_blob_cid(loc)), atdata_home())
        else:
            _check_location(loc)
    endpoint = (plan.options.get("client_kwargs") or {}).get("endpoint_url")
    if endpoint:
        _check_location(endpoint)
        assert plan.options.get("anon") is True, "credentials for an endpoint the record chose"


def _check_blob(path: Any, home: Any) -> None:
    assert (
        path.parent == home / "cache" / "blobs"
        and path.resolve().parent == (home / "cache" / "blobs").resolve()
    )
    assert path.name.startswith("bafkrei") and path.name.endswith(".tar"), path


TARGETS: dict[str, tuple[str, Any, Callable[[Any], None]]] = {
    "tar": (
        "tar reader (iter_members, scan_shard, iter_sample_members)",
        st.one_of(st.binary(max_size=3000), mutated_bytes(TAR_BASES)),
        read_tar,
    ),
    "sample": (
        "msgpack sample decoder (codec, DictSample, batch and per-sample Dataset reads)",
        st.one_of(
            st.binary(max_size=512),
            mutated_bytes(SAMPLE_BASES),
            sample_maps.map(_packed),
            st.integers(1, 100_000).map(lambda n: b"\x81\xa4text" + b"\x91" * n + b"\xc0"),
        ),
        decode_sample,
    ),
    "ndarray": ("NDArray header decoder (compact and .npy)", ndarray_payloads(), decode_array),
    "schema": (
        "schema record parser (local_schema_from_record -> Schema.from_record -> to_type)",
        st.one_of(
            mutated_json(RECORDS["schema"]),
            json_values,
            deep_values,
            mutated_json(RECORDS["local"]).map(lambda r: ("local", r)),
        ),
        parse_schema,
    ),
    "locations": (
        "record-derived locations (shard URLs, S3 keys/endpoints, blob CIDs -> trust policy, cache paths)",
        st.one_of(locations, record_locations()),
        read_locations,
    ),
    "lexicon": (
        "lexicon record validator (+ entry/label parsers)",
        st.one_of(
            mutated_json(RECORDS["entry"]),
            mutated_json(RECORDS["schema"]),
            mutated_json(RECORDS["label"]),
            json_values,
            deep_values,
        ),
        validate_any,
    ),
}


def _canary_error(value: Any) -> None:
    int("not a number")  # a builtin error: the harness must report it


def _canary_alloc(value: Any) -> None:
    np.ones(1 << 28)  # 2 GiB for any input: the address-space cap must stop it


def _canary_hang(value: Any) -> None:
    while True:  # the parent's timeout must catch it
        time.sleep(1)


CANARIES = {
    "canary-error": ("canary: raises ValueError", st.binary(max_size=8), _canary_error),
    "canary-alloc": ("canary: allocates 2 GiB", st.binary(max_size=8), _canary_alloc),
    "canary-hang": ("canary: never returns", st.binary(max_size=8), _canary_hang),
}


def _chain_has_memory_error(e: BaseException) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, MemoryError):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return False


def check(fn: Callable[[Any], None], value: Any, stats: Stats) -> None:
    stats.examples += 1
    size = _size(value[1] if isinstance(value, tuple) else value)
    stats.max_input = max(stats.max_input, size)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(value)
        stats.ok += 1
    except AtdataLabError as e:
        if _chain_has_memory_error(e):
            raise AssertionError(f"a project error hides a MemoryError: {e!r}") from None
        name = type(e).__name__
        stats.project_errors[name] = stats.project_errors.get(name, 0) + 1
    except Exception as e:  # noqa: BLE001 - the finding
        raise AssertionError(f"non-project error {type(e).__module__}.{type(e).__qualname__}: {e}") from e
    peak = tracemalloc.get_traced_memory()[1] - base
    stats.max_peak = max(stats.max_peak, peak)
    limit = PEAK_FACTOR * size + PEAK_SLACK
    assert peak <= limit, f"allocated {peak:,} bytes for a {size:,}-byte input (limit {limit:,})"


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=sorted(TARGETS) + sorted(CANARIES))
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--headroom-mb", type=int, default=512)
    ap.add_argument("--deadline-ms", type=int, default=2000)
    args = ap.parse_args(argv)
    title, strategy, fn = {**TARGETS, **CANARIES}[args.target]
    stats = Stats()
    tracemalloc.start()
    # warm up (first-use imports and caches) before capping memory
    for value in (b"", {}, None):
        if args.target in CANARIES:
            break
        try:
            check(fn, value, Stats())
        except AssertionError:
            pass

    def make_run(examples: int, into: Stats) -> Any:
        @settings(
            max_examples=examples,
            deadline=timedelta(milliseconds=args.deadline_ms),
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(strategy)
        def run(value: Any) -> None:
            check(fn, value, into)

        return run

    if args.target not in CANARIES:
        # hypothesis builds its own tables (the Unicode charmap, per-codec intervals) on first use,
        # lazily per strategy branch: a fresh clone has no cache, so build them before the cap,
        # which is for the code under test
        from hypothesis.internal import charmap

        charmap.charmap()
        for codec in ("utf-8", "ascii"):
            charmap.intervals_from_codec(codec)
        try:
            make_run(5, Stats())()
        except AssertionError:
            pass
    limit = _vm_size() + (args.headroom_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    run = make_run(args.examples, stats)

    t0 = time.monotonic()
    run()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "target": args.target,
                "title": title,
                "examples": stats.examples,
                "ok": stats.ok,
                "project_errors": stats.project_errors,
                "seconds": round(time.monotonic() - t0, 2),
                "max_peak_bytes": stats.max_peak,
                "max_input_bytes": stats.max_input,
                "address_space_cap_mb": limit >> 20,
                "peak_rss_mb": round(peak_rss / 2**20, 1),
            }
        )
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
