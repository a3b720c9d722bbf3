"""Writes shards with manifests, and answers manifest queries, with the real atdata 0.7.

Runs INSIDE the reference venv (Python 3.12 + ``atdata==0.7.0b1``); see
``tests/support/atdata_reference.py``. Reads one JSON document on stdin, prints one on stdout.

``{"cmd": "write", "path": ".../name.tar", "rows": [...], "maxcount": M or null}``
    ``atdata.write_samples([LabeledSample(**row) ...], path, maxcount=M, manifest=True)``; each row
    holds ``label, conf, n, flag, tags, opt`` and ``pixels`` (a list, written as a uint8 array).
    Prints ``{"shards": [{"url": path, "keys": [sample keys in file order]}, ...]}``.

``{"cmd": "query", "dir": FOLDER, "queries": [...]}`` or ``{"cmd": "query", "shards": [...], ...}``
    ``QueryExecutor.from_directory(FOLDER)`` (or ``.from_shard_urls(shards)``, what atdata's
    ``Dataset.query`` uses), then ``executor.query(where=...)`` for each query of
    ``manifest_queries.py``. Prints ``{"results": [[[shard, key, offset], ...], ...],
    "manifests": [{"shard_id", "num_samples", "aggregates", "columns"}, ...]}``.
"""

import json
import sys
import tarfile
from pathlib import Path
from typing import Optional

import atdata
import numpy as np
from atdata.manifest import F, QueryExecutor
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest_queries import to_where  # noqa: E402


@atdata.packable
class LabeledSample:
    pixels: NDArray
    label: str
    conf: float
    n: int
    flag: bool
    tags: list[str]
    opt: Optional[float] = None


def write(doc: dict) -> dict:
    samples = [
        LabeledSample(**{**row, "pixels": np.asarray(row["pixels"], dtype=np.uint8)}) for row in doc["rows"]
    ]
    ds = atdata.write_samples(samples, doc["path"], maxcount=doc.get("maxcount"), manifest=True)
    shards = []
    for url in ds.list_shards():
        with tarfile.open(url) as tf:
            keys = [m.name.split(".", 1)[0] for m in tf.getmembers() if m.isfile()]
        shards.append({"url": url, "keys": keys})
    return {"shards": shards}


def query(doc: dict) -> dict:
    if "dir" in doc:
        ex = QueryExecutor.from_directory(doc["dir"])
    else:
        ex = QueryExecutor.from_shard_urls(doc["shards"])
    results = []
    for spec in doc["queries"]:
        hits = ex.query(where=to_where(spec, F))
        results.append([[h.shard, h.key, h.offset] for h in hits])
    manifests = [
        {
            "shard_id": m.shard_id,
            "num_samples": m.num_samples,
            "aggregates": m.aggregates,
            "columns": [str(c) for c in m.samples.columns],
        }
        for m in ex._manifests
    ]
    return {"results": results, "manifests": manifests}


def main() -> None:
    doc = json.load(sys.stdin)
    out = write(doc) if doc["cmd"] == "write" else query(doc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
