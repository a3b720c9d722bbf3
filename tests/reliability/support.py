"""Shared helpers of the reliability suites: sample data, record counts, orphan checks."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.stores.local import TEMP_MARK

REPO_ROOT = Path(__file__).resolve().parents[2]
NSIDS = (rec.SCHEMA_NSID, rec.ENTRY_NSID, rec.LABEL_NSID)


@atdata.packable
class ReliabilitySample:
    """A sample for the reliability suites."""

    features: NDArray
    label: int


def samples(n: int, dim: int = 64, seed: int = 0) -> list[ReliabilitySample]:
    rng = np.random.default_rng(seed)
    return [
        ReliabilitySample(features=rng.standard_normal(dim).astype(np.float32), label=i % 10)
        for i in range(n)
    ]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python process that imports the project and the tests."""
    env = {k: v for k, v in os.environ.items() if k != "ATDATA_LAB_CRASH_AT"}
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


PYTHON = sys.executable


def records_of(client: Atmosphere) -> dict[str, list[dict[str, Any]]]:
    return {nsid: client.list_all_records(nsid, repo=client.did) for nsid in NSIDS}


def counts(client: Atmosphere) -> tuple[int, int, int]:
    r = records_of(client)
    return tuple(len(r[n]) for n in NSIDS)  # type: ignore[return-value]


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_orphans(client: Atmosphere) -> list[str]:
    """Records that are not part of one consistent schema <- entry <- label chain."""
    r = records_of(client)
    problems = []
    entries = {e["uri"]: e for e in r[rec.ENTRY_NSID]}
    schemas = {s["uri"] for s in r[rec.SCHEMA_NSID]}
    referenced_entries = {lab["value"].get("datasetUri") for lab in r[rec.LABEL_NSID]}
    for uri, e in entries.items():
        if e["value"].get("schemaRef") not in schemas:
            problems.append(f"entry {uri} points at a missing schema")
        if uri not in referenced_entries:
            problems.append(f"entry {uri} has no label")
    for lab in r[rec.LABEL_NSID]:
        if lab["value"].get("datasetUri") not in entries:
            problems.append(f"label {lab['uri']} points at a missing entry")
    used_schemas = {e["value"].get("schemaRef") for e in entries.values()}
    problems += [f"schema {s} is used by no entry" for s in schemas - used_schemas]
    return problems


def list_blob_cids(client: Atmosphere) -> set[str]:
    """Every blob the repository holds (``com.atproto.sync.listBlobs``)."""
    out: set[str] = set()
    cursor = None
    while True:
        page = client._call(
            "query",
            "com.atproto.sync.listBlobs",
            params={"did": client.did, "limit": 1000, "cursor": cursor},
            op="list blobs",
        )
        out.update(page.get("cids", []))
        cursor = page.get("cursor")
        if not cursor or not page.get("cids"):
            return out


def temp_files(folder: str | os.PathLike[str]) -> list[str]:
    """Writers' staging files left under ``folder``."""
    root = Path(folder)
    return sorted(str(p) for p in root.rglob("*") if TEMP_MARK in p.name) if root.exists() else []
