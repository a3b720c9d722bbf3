"""atdata 0.7's tutorials and examples run unchanged with ``atdata`` = ``atdata_lab``.

Every ```{python} block of each document (``eval: false`` ones included) runs in order, in one
namespace per document, with ``atdata`` and every ``atdata.<sub>`` module aliased to ``atdata_lab``
and ``atdata_lab.<sub>``. The documents are read from the atdata docs at test time (their text is
not copied here; ``$ATDATA_DOCS``, default ``/work/shared/atdata-docs``); the test is skipped where
they are absent, except under CI (``CI`` set), where it fails.

Blocks run in a fresh working directory with ``HOME`` (and ``ATDATA_HOME``) in it, so the paths the
documents write (``my-dataset.tar``, ``~/.atdata/...``) land in the test's tmp dir. Services are the
real ones: a block that logs in talks to the sandbox PDS, one that names an S3 server talks to
SeaweedFS, one that names Redis talks to redis-server. Only the placeholders for hosts, credentials
and handles are rewritten, each listed (with what it becomes) in :func:`_substitutions`; each must
still occur in its document, so a changed document is noticed.

A block listed in :data:`FAILS_UNDER_ATDATA_TOO` also fails under the real atdata 0.7, for the reason
given. Listed blocks still run, and must raise: a listed block that passes fails the test, so the
list shrinks as the library grows. :func:`test_listed_blocks_and_atdata_agree` runs the same blocks
(same substitutions) under atdata 0.7.0b1 itself and checks the list against it.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import atdata_lab
from tests.support import atdata_reference as ref

DOCS = Path(os.environ.get("ATDATA_DOCS", "/work/shared/atdata-docs"))
RUN_BLOCKS = Path(ref.__file__).with_name("atdata_run_blocks.py")

QUICKSTART = "tutorials/quickstart.qmd"
LOCAL_WORKFLOW = "tutorials/local-workflow.qmd"
PROMOTION = "tutorials/promotion.qmd"
LENS_TRANSFORMS = "examples/lens-transforms.qmd"
MANIFEST_QUERIES = "examples/manifest-queries.qmd"
LENSES_REFERENCE = "reference/lenses.qmd"
ATMOSPHERE_REFERENCE = "reference/atmosphere.qmd"

# Blocks that fail under the real atdata 0.7 as well, per document, with the reason (checked against
# atdata itself by test_listed_blocks_and_atdata_agree).
LENS_PLACEHOLDERS = "a snippet naming values the page never defines (its blocks are eval: false)"
FAILS_UNDER_ATDATA_TOO: dict[str, dict[int, str]] = {
    QUICKSTART: {},
    LOCAL_WORKFLOW: {
        2: "LocalDatasetEntry(...): a name the page never imports (NameError)",
    },
    PROMOTION: {
        4: "promotes 'experiment-batch-1' and 'experiment-batch-2', entries the page never writes "
        "(atdata: KeyError; atdata-lab: EntryNotFoundError, a KeyError)",
    },
    LENS_TRANSFORMS: {},
    MANIFEST_QUERIES: {},
    ATMOSPHERE_REFERENCE: {
        5: "reads data-{000000..000009}.tar, which the page never writes",
        6: "lists the repository did:plc:other-user and gets at://did:plc:.../..., placeholders that name "
        "no account (atdata: KeyError; atdata-lab: RecordNotFoundError, a KeyError)",
        7: "uploads data-{000000..000009}.tar, which the page never writes (FileNotFoundError)",
        8: "uploads data-{000000..000009}.tar, which the page never writes",
        9: "placeholder CIDs ('bafyrei111': atdata-lab refuses them as CIDs) and `urls` from the blocks "
        "that failed before (atdata: NameError)",
        12: "inserts data-{000000..000009}.tar, which the page never writes",
        13: LENS_PLACEHOLDERS + ": samples",
        14: "a snippet naming values the page never defines (its blocks are eval: false): full_schema_uri",
        15: "reads at://did:plc:abc/..., a placeholder repository (atdata: a network error; atdata-lab: "
        "'sampleSchema' is not the schema collection, refused before any request)",
        16: "reads at://did:plc:abc/..., a placeholder repository (atdata: a network error; atdata-lab: "
        "RecordNotFoundError, its DID does not resolve)",
        17: "reads at://did:plc:abc/..., a placeholder repository (as block 16)",
        19: "entry.uri after index.insert_dataset: the unified Index inserts into the local index, whose entry "
        "has no AT-URI in atdata either (AttributeError: 'LocalDatasetEntry' object has no attribute 'uri')",
    },
    LENSES_REFERENCE: {
        2: "reads data-{000000..000009}.tar, which the page never writes",
        4: LENS_PLACEHOLDERS + ": lens, source",
        5: LENS_PLACEHOLDERS + ": lens, source, view",
        6: LENS_PLACEHOLDERS + ": lens, source, v1, v2",
        7: LENS_PLACEHOLDERS + ": original",
        8: LENS_PLACEHOLDERS + ": TypeA, TypeB (the lookup before them runs, and is checked)",
    },
}

# Blocks that pass under atdata 0.7 only through one of its defects that atdata-lab does not copy
# (../shared/notes/atdata-format.md), with the defect. They must raise here, and must pass under atdata
# (checked by test_listed_blocks_and_atdata_agree, so the list stays true).
REFUSED_ATDATA_DEFECTS: dict[str, dict[int, str]] = {
    ATMOSPHERE_REFERENCE: {
        11: "publishes data-{000000..000009}.tar, files the page never writes, with checksum 'none' and the "
        "local schema ref as schemaRef: atdata records shards without reading them; atdata-lab hashes each "
        "shard for its sha256 (ShardNotFoundError here) and takes only at:// schema URIs",
    },
}

# The services a document's blocks talk to (fixture names), and what each placeholder becomes.
NEEDS: dict[str, tuple[str, ...]] = {
    LOCAL_WORKFLOW: (
        "redis_server",
        "redis_client",
        "s3_server",
        "s3_bucket",
        "postgres_dsn",
    ),  # redis_client: FLUSHALL first
    PROMOTION: ("pds_account",),
    ATMOSPHERE_REFERENCE: ("sandbox", "pds_account"),
}


def _substitutions(doc: str, fx: dict[str, Any]) -> dict[str, str]:
    """Placeholder -> real value, for the documents whose blocks reach a service."""
    if doc == LOCAL_WORKFLOW:
        redis, s3 = fx["redis_server"], fx["s3_server"]
        return {
            # `Redis(host="localhost", port=6379)`: the session's redis-server
            'host="localhost", port=6379': f'host="{redis.host}", port={redis.port}',
            # the S3DataStore credentials: the SeaweedFS server's endpoint and generated keys
            '"http://localhost:9000"': repr(s3.endpoint_url),
            '"AWS_ACCESS_KEY_ID": "minioadmin"': f'"AWS_ACCESS_KEY_ID": {s3.key!r}',
            '"AWS_SECRET_ACCESS_KEY": "minioadmin"': f'"AWS_SECRET_ACCESS_KEY": {s3.secret!r}',
            # the buckets the page names: this test's fresh bucket
            'bucket="my-bucket"': f"bucket={fx['s3_bucket']!r}",
            'bucket="team-datasets"': f"bucket={fx['s3_bucket']!r}",
            # the PostgreSQL index: a fresh database on the session's PostgreSQL server
            'dsn="postgresql://user:pass@host/db"': f"dsn={fx['postgres_dsn']!r}",
        }
    if doc == PROMOTION:
        account = fx["pds_account"]  # its fixture also points ATDATA_PDS_URL at the sandbox PDS
        return {
            '"myhandle.bsky.social", "app-password"': f"{account.handle!r}, {account.password!r}",
        }
    if doc == ATMOSPHERE_REFERENCE:
        # one fresh sandbox account for every handle the page names (its fixture also sets
        # ATDATA_HANDLE / ATDATA_PASSWORD for from_env() and ATDATA_PDS_URL), the sandbox PDS for its custom PDS
        account = fx["pds_account"]
        handle = repr(account.handle)
        return {
            '"alice.bsky.social"': handle,
            '"handle.bsky.social"': handle,
            '"handle.example.com"': handle,
            '"myhandle.bsky.social"': handle,
            '"app-password"': repr(account.password),
            'base_url="https://pds.example.com"': f"base_url={fx['sandbox'].pds_url!r}",
        }
    return {}


def _check_lenses_reference(ns: dict[str, Any], out: str) -> None:
    assert ns["updated_full"].label == "dog" and ns["simplify"].has_putter  # block 3
    # block 8's lookup, before its TypeA line fails: block 7 registered extract_label for the same
    # pair after simplify, and the last registration wins (as in atdata's LensNetwork.register)
    assert ns["lens"] is ns["extract_label"] and not ns["lens"].has_putter


def _check_atmosphere_reference(ns: dict[str, Any], out: str) -> None:
    client = ns["client"]
    assert f"{client.did}\n{client.handle}\n" in out  # block 0, logged in to the sandbox PDS
    assert ns["new_client"].did == client.did  # block 1: the exported session restored
    # block 10: SchemaPublisher wrote the schema record, which the loader reads back
    from atdata_lab.atmosphere import SchemaLoader

    record = SchemaLoader(client).get(f"@{client.handle}/ImageSample@1.0.0")
    assert record["metadata"]["source"] == "training" and record["description"] == "Image with label"
    assert "at://did:plc:abc123/science.alt.dataset.sampleSchema/xyz" in out  # block 18


def _expect(*fragments: str) -> Callable[[dict[str, Any], str], None]:
    def check(ns: dict[str, Any], out: str) -> None:
        for fragment in fragments:
            assert fragment in out, f"{fragment!r} not printed"

    return check


# What a document's run must have produced, beyond every block passing.
CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    QUICKSTART: _expect("Round-trip successful!", "Wrote 2 shards", "Batch shape: (16, 224, 224, 3)"),
    LOCAL_WORKFLOW: _expect("Decoded type: TrainingSample", "Batch features shape: (32, 128)"),
    PROMOTION: _expect("Published: at://", "Measurement shape: (32, 64)", "Dataset published: at://"),
    LENS_TRANSFORMS: _expect(
        "across 2 shards",
        "image shape : (16, 64, 64, 3)",
        "Updated label  : kitten",
        "RichSample -> ClassificationView  via to_classification",
    ),
    LENSES_REFERENCE: _check_lenses_reference,
    ATMOSPHERE_REFERENCE: _check_atmosphere_reference,
}

SERVICE_MARKS = {
    "redis_server": "redis",
    "s3_server": "s3",
    "sandbox": "sandbox",
    "pds_account": "sandbox",
}  # fixture -> marker


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```\{python\}[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def alias_atdata(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import atdata`` / ``import atdata.X`` / ``from atdata.X import Y`` give atdata_lab's.

    ``atdata.lens`` is both a module (``from atdata.lens import Lens``) and, as an attribute of the
    package, the ``@lens`` decorator, as in atdata: ``sys.modules`` holds the module, the package
    attribute stays the decorator.
    """
    monkeypatch.setitem(sys.modules, "atdata", atdata_lab)
    for info in pkgutil.walk_packages(atdata_lab.__path__, "atdata_lab."):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # `python -m` entry points run on import
        module = importlib.import_module(info.name)
        monkeypatch.setitem(sys.modules, "atdata" + info.name[len("atdata_lab") :], module)


def _module_name(doc: str) -> str:
    return "atdata_docs_" + re.sub(r"\W", "_", Path(doc).stem)


def _params(*, listing_only: bool = False):
    """The documents (``listing_only``: those with blocks listed as failing, unless
    ``ATDATA_DOCS_REFERENCE_ALL=1`` asks for every one)."""
    everything = not listing_only or os.environ.get("ATDATA_DOCS_REFERENCE_ALL")
    listed = {**FAILS_UNDER_ATDATA_TOO, **REFUSED_ATDATA_DEFECTS}
    for doc in (
        QUICKSTART,
        LOCAL_WORKFLOW,
        PROMOTION,
        LENS_TRANSFORMS,
        MANIFEST_QUERIES,
        LENSES_REFERENCE,
        ATMOSPHERE_REFERENCE,
    ):
        if not everything and not listed.get(doc):
            continue
        marks = [getattr(pytest.mark, SERVICE_MARKS[f]) for f in NEEDS.get(doc, ()) if f in SERVICE_MARKS]
        yield pytest.param(doc, marks=marks, id=Path(doc).stem)


def _blocks(doc: str, request: pytest.FixtureRequest) -> list[str]:
    """The document's blocks with its placeholders replaced (starting the services it needs)."""
    path = DOCS / doc
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have the atdata docs (set ATDATA_DOCS)")
        pytest.skip(f"atdata docs not available at {DOCS}")
    fx = {name: request.getfixturevalue(name) for name in NEEDS.get(doc, ())}
    subs = _substitutions(doc, fx)
    text = path.read_text()
    for placeholder in subs:
        assert placeholder in text, f"{doc} no longer contains {placeholder!r}: update _substitutions"
    blocks = python_blocks(text)
    listed = FAILS_UNDER_ATDATA_TOO.get(doc, {})
    assert set(listed) <= set(range(len(blocks))), f"{doc} has {len(blocks)} blocks"
    for placeholder, real in subs.items():
        blocks = [block.replace(placeholder, real) for block in blocks]
    return blocks


@pytest.mark.parametrize("doc", list(_params()))
def test_atdata_document_runs(doc: str, request, monkeypatch, tmp_path, capsys):
    blocks = _blocks(doc, request)
    failing = {**FAILS_UNDER_ATDATA_TOO.get(doc, {}), **REFUSED_ATDATA_DEFECTS.get(doc, {})}
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))  # `~/.atdata/...` in the blocks
    alias_atdata(monkeypatch)
    module = types.ModuleType(_module_name(doc))  # importable, like a notebook's __main__
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ns = module.__dict__

    problems: list[str] = []  # every block runs, so one run reports every failing block
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{doc}[block {i}]", "exec"), ns)
        except Exception as e:
            if i not in failing:
                where = traceback.extract_tb(e.__traceback__)[-1]
                problems.append(
                    f"block {i} failed: {type(e).__name__}: {e} ({where.filename}:{where.lineno})"
                )
        else:
            if i in failing:
                problems.append(f"block {i} passes now: remove it from the list ({failing[i]})")
    assert not problems, f"{doc}:\n" + "\n".join(problems)
    out = capsys.readouterr().out
    if doc in CHECKS:
        CHECKS[doc](ns, out)


@pytest.mark.slow
@pytest.mark.parametrize("doc", list(_params(listing_only=True)))
def test_listed_blocks_and_atdata_agree(doc: str, request):
    """The real atdata 0.7 runs the document the same way: each block of FAILS_UNDER_ATDATA_TOO fails
    there too.

    ``ATDATA_DOCS_REFERENCE_ALL=1`` also runs the documents that list nothing; ``-s`` shows how
    every block fared under atdata.
    """
    fails = FAILS_UNDER_ATDATA_TOO.get(doc, {})
    blocks = _blocks(doc, request)
    ref.require_atdata_venv()
    job = {"name": doc, "module": _module_name(doc), "blocks": blocks}
    got = ref.run_atdata_json(RUN_BLOCKS, stdin=json.dumps(job), timeout=300)
    version = got["atdata_version"]
    errors = {r["block"]: r["error"] for r in got["results"]}
    for i, error in errors.items():
        print(f"[atdata {version}] {doc} block {i}: {error or 'ok'}")
    passing = {i: reason for i, reason in fails.items() if errors[i] is None}
    assert not passing, f"{doc}: these blocks pass under atdata {version}: {passing}"
    refused = REFUSED_ATDATA_DEFECTS.get(doc, {})
    failing = {i: errors[i] for i in refused if errors[i] is not None}
    assert not failing, (
        f"{doc}: these blocks, refused here for an atdata defect, fail under atdata too: {failing}"
    )
