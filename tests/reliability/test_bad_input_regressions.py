"""Bugs the fuzzers found, each kept as a plain regression test.

Every input here once made a reader raise something other than the project's own errors, or
allocate memory for a size a header declared rather than for the bytes present.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest

from atdata_lab.errors import AtdataLabError, ShardError
from atdata_lab.shards import scan_shard
from atdata_lab.tar import BLOCK, END_OF_ARCHIVE, iter_members, ustar_header


def _with_checksum(h: bytearray) -> bytes:
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def _header(name: str, size_field: bytes, typeflag: bytes = b"0") -> bytes:
    h = bytearray(ustar_header(name, 0))
    h[124:136] = size_field
    h[156:157] = typeflag
    return _with_checksum(h)


def _pax(record: bytes) -> bytes:
    h = bytearray(ustar_header("PaxHeaders/x", len(record)))
    h[156:157] = b"x"
    return _with_checksum(h) + record + bytes(-len(record) % BLOCK)


def _peak_while(fn) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        fn()
        err = None
    except BaseException as e:  # noqa: BLE001 - returned to the test
        err = e
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return err, peak


@pytest.mark.parametrize(
    "size_field",
    [
        bytes([0x80]) + (2**80).to_bytes(11, "big"),  # GNU base-256: once an OverflowError
        b"77777777777\x00",  # 8 GiB - 1: once an 8 GiB read(n) buffer (MemoryError)
    ],
    ids=["base256-2**80", "octal-8GiB"],
)
def test_tar_member_declaring_a_huge_size_is_a_shard_error_with_bounded_memory(tmp_path, size_field):
    data = _header("0.msgpack", size_field) + bytes(4 * BLOCK)
    path = tmp_path / "huge.tar"
    path.write_bytes(data)
    for fn in (
        lambda: list(iter_members(io.BytesIO(data), "huge.tar")),
        lambda: list(iter_members(open(path, "rb"), "huge.tar")),  # noqa: SIM115
        lambda: scan_shard(str(path)),
    ):
        err, peak = _peak_while(fn)
        assert isinstance(err, ShardError) and "truncated" in str(err), repr(err)
        assert peak < 16 << 20, f"{peak:,} bytes allocated for a {len(data)}-byte file"


@pytest.mark.parametrize(
    "value", [b"abc", b"-5", b"9" * 5000], ids=["not-a-number", "negative", "5000-digits"]
)
def test_tar_pax_size_that_is_not_a_byte_count_is_a_shard_error(value):
    record = b"size=" + value + b"\n"
    n = len(record) + 1
    n = len(record) + len(str(n)) + 1
    data = (
        _pax(str(n).encode() + b" " + record)
        + ustar_header("0.msgpack", 1)
        + b"x"
        + bytes(BLOCK - 1)
        + END_OF_ARCHIVE
    )
    with pytest.raises(AtdataLabError):
        list(iter_members(io.BytesIO(data), "pax.tar"))


def _npy(descr: str, shape: tuple[int, ...], version: tuple[int, int] = (1, 0)) -> bytes:
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    if version == (1, 0):
        return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")
    return b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header.encode("latin1")


@pytest.mark.parametrize(
    "payload",
    [
        _npy("<f8", (2**40,)),  # once np.load tried to allocate 8 TiB before reading
        _npy("<f8", (50_000_000,)),  # ... or allocated 400 MB for a 128-byte payload
        _npy("<f4", (2**20, 2**20), (2, 0)),
    ],
    ids=["8TiB", "400MB", "v2-4TiB"],
)
def test_npy_payload_declaring_more_than_it_holds_allocates_nothing(payload):
    from atdata_lab.ndarray_codec import NDArrayFormatError, decode_ndarray

    err, peak = _peak_while(lambda: decode_ndarray(payload))
    assert isinstance(err, NDArrayFormatError) and "bytes but" in str(err), repr(err)
    assert err.__cause__ is None and err.__context__ is None  # no MemoryError underneath
    assert peak < 1 << 20


@pytest.mark.parametrize(
    "payload",
    [
        b"\x03<U0\x01" + (5).to_bytes(8, "little"),  # once numpy's "itemsize cannot be zero" ValueError
        b"\x02S0\x00",
        _npy("<U0", (3,)),
    ],
    ids=["U0", "S0", "npy-U0"],
)
def test_zero_size_dtype_is_an_ndarray_format_error(payload):
    from atdata_lab.ndarray_codec import NDArrayFormatError, decode_ndarray

    with pytest.raises(NDArrayFormatError, match="dtype"):
        decode_ndarray(payload)


def test_valid_npy_payloads_still_decode():
    import numpy as np

    from atdata_lab.ndarray_codec import decode_ndarray

    for arr in (
        np.arange(12, dtype="<i4").reshape(3, 4),
        np.asfortranarray(np.ones((2, 5), ">f8")),
        np.array(["ab", "c"]),
        np.zeros((0, 3), np.uint8),
        np.float16(1.5) * np.ones(()),
    ):
        buf = io.BytesIO()
        np.save(buf, arr)
        got = decode_ndarray(buf.getvalue())
        assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr)
        assert got.flags.writeable


def _local_schema(**field_type) -> dict:
    return {
        "name": "S",
        "version": "1.0.0",
        "fields": [
            {"name": "x", "fieldType": field_type or {"$type": "local#primitive", "primitive": "int"}}
        ],
    }


@pytest.mark.parametrize(
    "record",
    [
        {"version": "1.0.0", "fields": []},  # once a bare ValueError
        {**_local_schema(), "name": "1bad"},
        {**_local_schema(), "version": "one"},
        _local_schema(**{"$type": 5}),  # once an AttributeError
        _local_schema(**{"$type": "local#ndarray", "dtype": {"names": ["a"], "formats": ["<f4"]}}),
        _local_schema(**{"$type": "local#ndarray", "dtype": "f4,i4"}),  # once accepted (structured)
        _local_schema(**{"$type": "local#ndarray", "dtype": "O"}),  # once accepted (object)
        _local_schema(**{"$type": "local#ndarray", "dtype": "(2"}),
        {
            **_local_schema(),
            "fields": [{"name": "class", "fieldType": {"$type": "local#dict"}}],
        },  # once a TypeError in to_type
    ],
    ids=[
        "no-name",
        "bad-name",
        "bad-version",
        "type-int",
        "dtype-dict",
        "dtype-structured",
        "dtype-object",
        "dtype-junk",
        "keyword-field",
    ],
)
def test_schema_record_parser_raises_record_validation_error(record):
    from atdata_lab.errors import RecordValidationError
    from atdata_lab.schema import Schema

    with pytest.raises(RecordValidationError):
        Schema.from_record(record).to_type()


@pytest.mark.parametrize("where", ["value", "key", "nested"])
def test_lone_surrogate_in_a_record_is_a_record_validation_error_naming_the_field(where):
    from atdata_lab.atmosphere import records as rec
    from atdata_lab.atmosphere.lexicon import record_json_size, validate_record
    from atdata_lab.errors import RecordValidationError

    label = rec.label_record(
        "x", "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.entry/3kabcdefghijk"
    )
    bad = "a\ud800b"  # once a UnicodeEncodeError from the JSON size check
    if where == "value":
        label["description"] = bad
        path = "label.description"
    elif where == "key":
        label[bad] = "v"
        path = "label"
    else:
        label["extra"] = {"list": ["ok", bad]}
        path = "label.extra.list[1]"
    with pytest.raises(RecordValidationError, match=r"surrogate") as ei:
        validate_record(label, rec.LABEL_NSID)
    assert str(ei.value).startswith(path)
    with pytest.raises(RecordValidationError):
        record_json_size({"x": bad})


def test_deeply_nested_schema_field_type_is_a_record_validation_error():
    from atdata_lab.errors import RecordValidationError
    from atdata_lab.schema import Schema

    ft: dict = {"$type": "local#primitive", "primitive": "int"}
    for _ in range(3000):  # once a RecursionError
        ft = {"$type": "local#array", "items": ft}
    with pytest.raises(RecordValidationError, match="nested more than 32"):
        Schema.from_record({"name": "S", "version": "1.0.0", "fields": [{"name": "x", "fieldType": ft}]})
