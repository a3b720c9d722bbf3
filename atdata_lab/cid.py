"""Content identifiers: CIDv1, dag-cbor, sha2-256 (the ATProto record CID format)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import libipld

__all__ = ["cid_for"]

_PREFIX = bytes([0x01, 0x71, 0x12, 0x20])  # CIDv1, dag-cbor, sha2-256, 32-byte digest


def cid_for(obj: Any) -> str:
    """The CID (``bafyrei...``) of ``obj`` encoded as dag-cbor.

    ``obj`` may hold dicts with str keys, lists, str, int, bool, None and bytes (no floats:
    dag-cbor in ATProto forbids them, and content identity must not depend on float text).
    """
    digest = hashlib.sha256(libipld.encode_dag_cbor(obj)).digest()
    return "b" + base64.b32encode(_PREFIX + digest).decode("ascii").lower().rstrip("=")
