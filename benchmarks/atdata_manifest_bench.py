"""atdata 0.7's side of the manifest rows of ``benchmarks/run.py``.

Runs INSIDE the reference venv (Python 3.12 + ``atdata==0.7.0b1``, see
``tests/support/atdata_reference.py``). Reads one JSON document on stdin, prints one on stdout.

``{"cmd": "query", "dir": FOLDER, "queries": [...], "repeat": k}``
    Times ``QueryExecutor.from_directory(FOLDER)`` (atdata reads every manifest's header and Parquet
    rows there, eagerly), then ``executor.query(where=...)`` ``k`` times for each query (JSON as in
    ``tests/support/manifest_queries.py``, turned into atdata's own ``F`` predicates). Prints
    ``{"load_s": s, "queries": [{"s": [each run], "count": hits, "digest": sha256 of the hits}]}``.

``{"cmd": "write", "dir": FOLDER, "n": n, "maxcount": m, "pairs": p}``
    Times atdata's ``write_samples`` of ``n`` small samples without and with ``manifest=True``,
    ``p`` times each, alternating. Prints ``{"without_s": [...], "with_s": [...]}``.
"""

import gc
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import atdata
from atdata.manifest import F, QueryExecutor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from manifest_queries import to_where  # noqa: E402


@atdata.packable
class TaggedSample:
    label: int
    score: float
    category: str


def digest(hits) -> str:
    """The same digest run.py makes of our hits."""
    text = "\n".join(f"{h.shard}\t{h.key}\t{h.offset}" for h in hits)
    return hashlib.sha256(text.encode()).hexdigest()


def query(doc: dict) -> dict:
    gc.collect()
    t = time.perf_counter()
    ex = QueryExecutor.from_directory(doc["dir"])
    load_s = time.perf_counter() - t
    out = []
    for spec in doc["queries"]:
        where = to_where(spec, F)
        times = []
        hits = []
        for _ in range(doc.get("repeat", 1)):
            gc.collect()
            t = time.perf_counter()
            hits = ex.query(where=where)
            times.append(time.perf_counter() - t)
        out.append({"s": times, "count": len(hits), "digest": digest(hits)})
    return {"load_s": load_s, "queries": out}


def samples(n: int) -> list:
    """The same samples run.py writes (a generator over the same pseudo-random values)."""
    import numpy as np

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 1000, n).tolist()
    scores = rng.random(n).tolist()
    cats = rng.integers(0, 100, n).tolist()
    return [TaggedSample(label=a, score=b, category=f"cat_{c:02d}") for a, b, c in zip(labels, scores, cats)]


def write(doc: dict) -> dict:
    data = samples(doc["n"])
    folder = Path(doc["dir"])
    times: dict[str, list[float]] = {"without_s": [], "with_s": []}
    for r in range(doc["pairs"]):
        order = (False, True) if r % 2 else (True, False)
        for manifest in order:
            out = folder / f"w{r}-{int(manifest)}"
            out.mkdir(parents=True)
            gc.collect()
            t = time.perf_counter()
            atdata.write_samples(data, str(out / "d.tar"), maxcount=doc["maxcount"], manifest=manifest)
            times["with_s" if manifest else "without_s"].append(time.perf_counter() - t)
            shutil.rmtree(out)
    return times


def main() -> None:
    doc = json.load(sys.stdin)
    out = query(doc) if doc["cmd"] == "query" else write(doc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
