"""Publish a small dataset with the real atdata 0.7 (run inside its reference venv).

Usage: ``python atdata_publish_dataset.py <pds_url> <name> <word>``, the account's handle and
password on stdin (two lines, so the password never shows in a process listing). Writes 12 samples
of ``TheirRow`` (``x``: int64 array of 4, ``label``: int) into one shard with ``atdata.write_samples``,
publishes the schema (``SchemaPublisher``), the shard as a PDS blob (``DatasetPublisher.publish_with_blobs``)
and a label (``LabelPublisher``), all with atdata's own code and no AppView configured (atdata then
writes with ``createRecord``). Prints ``{"uri", "schema_uri", "label_uri", "did"}`` as JSON.

atdata's ``Atmosphere.login`` asks the PDS for the account's Bluesky profile, which a bare PDS (the
sandbox) cannot answer; where that fails the session is created by atdata's own SDK client without
the profile lookup and handed to atdata's ``Atmosphere`` (its ``_client`` argument), which is how
atdata's tests construct it. Everything after login is atdata's code unchanged.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import atdata
import numpy as np
from atdata.atmosphere import Atmosphere, DatasetPublisher, LabelPublisher, SchemaPublisher
from numpy.typing import NDArray


@atdata.packable
class TheirRow:
    x: NDArray
    label: int


def login(handle: str, password: str, pds_url: str) -> Atmosphere:
    try:
        return Atmosphere.login(handle, password, base_url=pds_url)
    except Exception:
        from atproto import Client

        client = Client(base_url=pds_url)
        client.login(handle, password, fetch_bsky_profile=False)
        atmo = Atmosphere(base_url=pds_url, _client=client)
        session = client._session  # the SDK keeps the DID and handle here when no profile was fetched
        atmo._session = {"did": session.did, "handle": session.handle}
        return atmo


def main() -> None:
    pds_url, name, word = sys.argv[1:4]
    handle, password = sys.stdin.read().splitlines()[:2]
    atmo = login(handle, password, pds_url)
    rows = [TheirRow(x=np.arange(4, dtype=np.int64) * 10 + i, label=i % 4) for i in range(12)]
    with tempfile.TemporaryDirectory() as tmp:
        ds = atdata.write_samples(rows, str(Path(tmp) / "theirs.tar"))
        blobs = [Path(u).read_bytes() for u in ds.list_shards()]
    schema_uri = SchemaPublisher(atmo).publish(
        TheirRow, version="1.0.0", description="published by atdata 0.7"
    )
    uri = DatasetPublisher(atmo).publish_with_blobs(
        blobs,
        str(schema_uri),
        name=name,
        description=f"rows from atdata for the {word} search test",
        tags=[word, "atdata"],
        license="MIT",
    )
    label_uri = LabelPublisher(atmo).publish(name, str(uri))
    print(
        json.dumps(
            {"uri": str(uri), "schema_uri": str(schema_uri), "label_uri": str(label_uri), "did": atmo.did}
        )
    )


if __name__ == "__main__":
    main()
