"""Manifests for shards written without them: one streaming pass over each shard.

The shard is read once, front to back (never held whole): each sample is decoded for its field
values while the member offsets come from the tar headers, and the bytes are hashed on the way,
so a shard whose checksum is known is checked by the same pass (a mismatch publishes nothing).
"""

from __future__ import annotations

from typing import Any

from ..errors import ShardError
from ..sample import DictSample, codec_for
from ..shards import HashingReader
from ..tar import BLOCK, iter_members, split_key
from ..urls import open_url
from .builder import ManifestBuilder, manifest_fields_for
from .shard_manifest import ShardManifest, shard_id_for

__all__ = ["manifest_of_shard"]


def manifest_of_shard(
    shard_url: str,
    sample_type: type,
    *,
    storage_options: dict[str, Any] | None = None,
    checksum: str | None = None,
    schema_version: str = "1.0.0",
    source: str | None = None,
) -> ShardManifest:
    """The manifest of an existing shard, made in one pass over its bytes.

    Args:
        shard_url: The shard (its id and the manifest's location derive from it).
        sample_type: How to decode the samples (``DictSample``: fields from the first sample).
        storage_options: For reading remote shards.
        checksum: The shard's sha256 hex digest, checked by the same pass.
        source: Read the bytes from here instead (e.g. a verified local copy).

    Raises:
        ShardError: The shard is corrupt, or its bytes do not match ``checksum``.
        SampleDecodeError: A sample does not fit ``sample_type``.
    """
    codec = codec_for(sample_type)
    builder: ManifestBuilder | None = None
    shard_id = shard_id_for(shard_url)
    with open_url(source or shard_url, storage_options) as f:
        reader = HashingReader(f)
        member_start = 0  # where the next member's headers begin: just after the previous member's data
        for name, data_off, size, data in iter_members(reader, shard_url):
            start = member_start
            member_start = data_off + ((size + BLOCK - 1) & ~(BLOCK - 1))
            key, ext = split_key(name)
            if ext != "msgpack":
                continue
            sample = codec.unpack(data, f"shard {shard_url}, sample {key!r}")
            if builder is None:
                builder = ManifestBuilder(
                    sample_type,
                    shard_id,
                    schema_version,
                    fields=manifest_fields_for(sample_type, sample if sample_type is DictSample else None),
                )
            builder.add_sample(
                key=key, offset=start, size=size, sample=sample, data_offset=data_off, payload=data
            )
        while reader.read(1 << 20):  # hash any bytes after the end-of-archive blocks
            pass
    if checksum and reader.sha.hexdigest() != checksum:
        raise ShardError(
            f"shard {shard_url}: its bytes do not match the checksum its entry records "
            f"(sha256 {reader.sha.hexdigest()}, expected {checksum}); no manifest was made: "
            "the shard changed or is damaged: re-write it"
        )
    if builder is None:
        builder = ManifestBuilder(
            sample_type, shard_id, schema_version, fields=manifest_fields_for(sample_type)
        )
    return builder.build(size_bytes=reader.size)
