"""Content identifiers: CIDv1, dag-cbor, sha2-256 (the ATProto record CID format)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import libipld

from .errors import InvalidArgumentError, RecordValidationError

__all__ = ["cid_for", "BlobCID", "generate_cid", "parse_blob_cid", "verify_cid"]

_PREFIX = bytes([0x01, 0x71, 0x12, 0x20])  # CIDv1, dag-cbor, sha2-256, 32-byte digest
_RAW_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32-byte digest
_RAW, _SHA256 = 0x55, 0x12


def cid_for(obj: Any) -> str:
    """The CID (``bafyrei...``) of ``obj`` encoded as dag-cbor.

    ``obj`` may hold dicts with str keys, lists, str, int, bool, None and bytes (no floats:
    dag-cbor in ATProto forbids them, and content identity must not depend on float text).
    """
    digest = hashlib.sha256(libipld.encode_dag_cbor(obj)).digest()
    return "b" + base64.b32encode(_PREFIX + digest).decode("ascii").lower().rstrip("=")


def generate_cid(data: Any) -> str:
    """The CID of ``data`` encoded as dag-cbor (atdata's name for :func:`cid_for`).

    Raises:
        InvalidArgumentError: ``data`` cannot be encoded as dag-cbor (a ``ValueError``).
    """
    try:
        return cid_for(data)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidArgumentError(f"cannot make a CID: the data is not dag-cbor encodable ({e})") from e


def verify_cid(cid: str, data: Any) -> bool:
    """Whether ``cid`` is the CID of ``data`` (False also when ``data`` cannot be encoded)."""
    try:
        return generate_cid(data) == cid
    except InvalidArgumentError:
        return False


class BlobCID:
    """A blob CID parsed from text: CIDv1, ``raw`` codec, sha2-256 (what ATProto blobs use).

    ``str(cid)`` is its canonical text (base32, lower case), rebuilt from the parsed bytes, so
    it can name a file: it is never the text it was parsed from. ``digest`` is the sha256 the
    blob's bytes must have.
    """

    __slots__ = ("digest",)

    def __init__(self, digest: bytes) -> None:
        self.digest = digest

    def __str__(self) -> str:
        return "b" + base64.b32encode(_RAW_PREFIX + self.digest).decode("ascii").lower().rstrip("=")

    def __repr__(self) -> str:
        return f"BlobCID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlobCID) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def matches(self, sha256_digest: bytes) -> bool:
        return sha256_digest == self.digest


def parse_blob_cid(text: Any, where: str = "blob CID") -> BlobCID:
    """Parse a blob CID with libipld; only CIDs whose bytes can be checked here are accepted.

    Raises:
        RecordValidationError: not a CID, or not a CIDv1 with the raw codec and a sha2-256 hash
            (any other codec or hash could not be verified against the blob's bytes).
    """
    if not isinstance(text, str) or not 8 <= len(text) <= 200:
        raise RecordValidationError(f"{where}: {text!r:.80} is not a CID")
    try:
        parsed = libipld.decode_cid(text)
    except Exception:  # libipld raises ValueError, or its own error types, for anything unparsable
        raise RecordValidationError(f"{where}: {text!r:.80} is not a CID") from None
    h = parsed.get("hash") if isinstance(parsed, dict) else None
    if (
        not isinstance(h, dict)
        or parsed.get("version") != 1
        or parsed.get("codec") != _RAW
        or h.get("code") != _SHA256
        or h.get("size") != 32
        or not isinstance(h.get("digest"), bytes)
        or len(h["digest"]) != 32
    ):
        raise RecordValidationError(
            f"{where}: {text!r:.80} is not a CIDv1 with the raw codec and a sha2-256 hash (bafkrei...), the only "
            "blob CIDs whose bytes can be verified"
        )
    return BlobCID(h["digest"])
