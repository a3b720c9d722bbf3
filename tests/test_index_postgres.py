"""The PostgreSQL provider opts into the index conformance suite on a real PostgreSQL server
(Debian's ``postgres``, started by ``tests/plugins/services.py``), plus PostgreSQL-specific checks:
concurrent writers, the DSN's password never shown, clear errors when the server is away."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

import pytest

import atdata_lab as atdata
from atdata_lab.providers.base import IndexUnavailableError
from atdata_lab.providers.postgres import PostgresProvider, mask_dsn
from tests.conformance.index_suite import IndexSuite, experiment
from tests.plugins.services import free_ports

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[1]


class TestPostgresIndex(IndexSuite):
    @pytest.fixture
    def index(self, postgres_dsn, tmp_path):
        index = atdata.Index(
            "postgres", dsn=postgres_dsn, data_store=atdata.LocalDiskStore(tmp_path / "data")
        )
        yield index
        index.provider.close()


def test_dsn_alone_chooses_postgres_and_repositories_mount(postgres_server, postgres_dsn, tmp_path):
    index = atdata.Index(dsn=postgres_dsn, data_store=atdata.LocalDiskStore(tmp_path / "a"))
    assert isinstance(index.provider, PostgresProvider) and index.provider.kind == "postgres"
    mine = index.write(experiment(3), name="mine", progress=False)
    lab_dsn = postgres_server.create_database()
    lab = atdata.create_repository("postgres", dsn=lab_dsn, data_store=atdata.LocalDiskStore(tmp_path / "b"))
    both = atdata.Index(
        "postgresql", dsn=postgres_dsn, data_store=atdata.LocalDiskStore(tmp_path / "a"), repos={"lab": lab}
    )
    theirs = atdata.Index(lab.provider, data_store=lab.data_store).write(
        experiment(4, seed=1), name="theirs", progress=False
    )
    assert sorted(e.name for e in both.list_datasets()) == ["mine", "theirs"]
    both.label("lab/mnist", theirs.cid, version="1.0.0")
    assert both.get_label("lab/mnist").name == "theirs" and both.get_entry_by_name("mine") == mine
    with pytest.raises(ValueError, match="dsn="):
        atdata.create_repository("postgres")


def test_two_indexes_share_one_database_through_schemas(postgres_server, postgres_dsn, tmp_path):
    """Like Redis key prefixes: each index in its own schema (search_path given in the DSN)."""
    with postgres_server.connect(postgres_dsn.rsplit("/", 1)[1]) as conn:
        conn.execute("CREATE SCHEMA team_a")
        conn.execute("CREATE SCHEMA team_b")
    a = atdata.Index(
        dsn=postgres_dsn + "?options=-csearch_path%3Dteam_a", data_store=atdata.LocalDiskStore(tmp_path / "a")
    )
    b = atdata.Index(
        dsn=postgres_dsn + "?options=-csearch_path%3Dteam_b", data_store=atdata.LocalDiskStore(tmp_path / "b")
    )
    a.write(experiment(3), name="same-name", progress=False)
    b.write(experiment(4), name="same-name", progress=False)
    assert a.get_entry_by_name("same-name").num_samples == 3
    assert b.get_entry_by_name("same-name").num_samples == 4
    assert len(a) == len(b) == 1


def test_sorting_is_by_bytes_whatever_the_database_collation(postgres_server, tmp_path):
    """A database whose default collation is ICU English (not bytes) still sorts as SQLite does."""
    name = "t_icu_" + os.urandom(4).hex()
    with postgres_server.connect() as conn:
        conn.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    try:
        index = atdata.Index(dsn=postgres_server.dsn(name), data_store=atdata.LocalDiskStore(tmp_path))
        for i, (n, lic) in enumerate([("b", "Zlib"), ("a", "apache"), ("c", "MIT"), ("d", None)]):
            index.write(experiment(i + 1), name=n, license=lic, tags=[lic or "zz"], progress=False)
        # bytes: "MIT" < "Zlib" < "apache" (ICU English would give apache, MIT, Zlib); NULL first
        assert [e.name for e in index.search(sort="license", descending=False, limit=None)] == [
            "d",
            "c",
            "b",
            "a",
        ]
        assert [e.name for e in index.search(sort="tags", descending=True, limit=None)] == [
            "d",
            "a",
            "b",
            "c",
        ]
        index.provider.close()
    finally:
        postgres_server.drop_database(name)


def _synthetic_rows(n: int) -> list[dict]:
    rng = random.Random(7)
    licenses = [None, "MIT", "Apache-2.0", "CC-BY-4.0", "Zlib", "apache"]
    tags = ["alpha", "beta", "é", "Zeta", "z", "100%_"]
    return [
        {
            "name": f"{rng.choice(['run', 'Run', 'exp', 'é'])}-{i:03d}",
            "cid": f"bafy{i % 17}",
            "schema_ref": rng.choice(
                [
                    "atdata://local/schema/A@1.0.0",
                    "atdata://local/schema/A@2.0.0",
                    "atdata://local/schema/B@1.0.0",
                ]
            ),
            "data_urls": [f"/d/{i}-{k}.tar" for k in range(rng.randint(1, 3))],
            "num_samples": rng.choice([0, 5, 5, 10, 1000]),
            "num_shards": 1,
            "size_bytes": rng.randint(0, 3) * 100,
            "shard_checksums": ["0" * 64],
            "metadata": {"i": i, "nested": {"b": 1, "a": [1, 2]}},
            "description": rng.choice([None, "Calibration run", "measurement 100%_done", "x"]),
            "tags": rng.sample(tags, rng.randint(0, 3)),
            "license": rng.choice(licenses),
            "created_at": f"2026-01-0{rng.randint(1, 3)}T00:00:0{rng.randint(0, 2)}",
            "published_uri": rng.choice([None, None, f"at://did:plc:x/science.alt.dataset.entry/{i}"]),
        }
        for i in range(n)
    ]


def test_search_matches_sqlite_exactly(postgres_dsn, tmp_path):
    """Differential check: the same 120 rows (ties, NULLs, accents, LIKE wildcards) in SQLite and
    PostgreSQL give identical pages and totals for every filter x sort x direction x page tried."""
    from atdata_lab.providers.base import SORT_COLUMNS
    from atdata_lab.providers.sqlite import SQLiteProvider

    lite, pg = SQLiteProvider(tmp_path / "ref.db"), PostgresProvider(postgres_dsn)
    for row in _synthetic_rows(120):
        for prov in (lite, pg):
            prov.put_entry(row, [])
    filters = [
        {},
        {"text": "run"},
        {"text": "CALIB"},
        {"text": "100%_"},
        {"text": "é"},
        {"tags": ["alpha"]},
        {"tags": ["alpha", "é"]},
        {"schema": "A"},
        {"schema": "atdata://local/schema/A@2.0.0"},
        {"published": True},
        {"published": False, "tags": ["beta"]},
        {"text": "-0", "schema": "B", "published": False},
    ]
    checked = 0
    for f in filters:
        for sort in SORT_COLUMNS:
            for descending in (True, False):
                for offset, limit in ((0, 10), (7, 25), (0, None), (500, 5), (3, 0)):
                    args = {**f, "sort": sort, "descending": descending, "offset": offset, "limit": limit}
                    want_rows, want_total = lite.search(**args)
                    got_rows, got_total = pg.search(**args)
                    assert got_total == want_total, args
                    assert got_rows == want_rows, args
                    checked += 1
    assert checked == len(filters) * len(SORT_COLUMNS) * 10
    for cid in ("bafy3", "bafy16"):  # the newest entry with that CID (ties: any of them)
        got, want = pg.get_entry_by_cid(cid), lite.get_entry_by_cid(cid)
        assert got["cid"] == cid and got["created_at"] == want["created_at"]
    assert pg.get_entry_by_cid("nope") is None
    urls = [f"/d/{i}-{k}.tar" for i in range(0, 120, 7) for k in range(3)]
    assert pg.urls_in_use(urls) == lite.urls_in_use(urls)
    pg.close()


def test_first_connections_at_once_create_the_tables_once(postgres_server, postgres_dsn):
    """Six clients opening an empty database together: the advisory lock lets one create the tables."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        providers = list(pool.map(lambda _: PostgresProvider(postgres_dsn), range(6)))
    assert all(p.search(limit=0) == ([], 0) for p in providers)
    with postgres_server.connect(postgres_dsn.rsplit("/", 1)[1]) as conn:
        assert conn.execute("SELECT value FROM atdata_lab_meta WHERE key = 'layout'").fetchone() == (1,)
        conn.execute("UPDATE atdata_lab_meta SET value = 99 WHERE key = 'layout'")
    with pytest.raises(ValueError, match="layout 99.*upgrade atdata-lab"):
        PostgresProvider(postgres_dsn)
    for p in providers:
        p.close()


# -------------------------------------------------------------------------- concurrent writers

_WRITER = textwrap.dedent("""
    import json, sys, time
    import atdata_lab as atdata
    from tests.conformance.index_suite import experiment
    dsn, data, seed, start_at, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
    idx = atdata.Index(dsn=dsn, data_store=atdata.LocalDiskStore(data))
    time.sleep(max(0.0, start_at - time.time()))
    out = {}
    for name in names:
        try:
            idx.write(experiment(5 + seed, seed=seed), name=name, progress=False)
            out[name] = "ok"
        except atdata.EntryConflictError:
            out[name] = "conflict"
    print(json.dumps(out))
""")


def test_two_processes_writing_the_same_names_get_one_entry_each(postgres_dsn, tmp_path):
    """Two processes write the same 12 names (different content) at once: every name ends with
    exactly one entry, the other writer gets a clean EntryConflictError, and its shards are gone."""
    names = [f"race-{i:02d}" for i in range(12)]
    start_at = time.time() + 3.0  # both have imported and connected by then
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                postgres_dsn,
                str(tmp_path / f"d{p}"),
                str(p),
                str(start_at),
                *names,
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-3000:] for _, e in outs]
    results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    index = atdata.Index(dsn=postgres_dsn, data_store=atdata.LocalDiskStore(tmp_path / "d0"))
    assert len(index) == len(names)
    for name in names:
        outcome = [r[name] for r in results]
        assert sorted(outcome) == ["conflict", "ok"], (name, outcome)
        winner = outcome.index("ok")
        entry = index.get_entry_by_name(name)
        assert entry.num_samples == 5 + winner and len(index.dataset(entry)) == 5 + winner
        loser_files = list((tmp_path / f"d{1 - winner}").glob(f"{name}/*.tar"))
        assert loser_files == [], loser_files  # the conflicting write cleaned up after itself


_PUTTER = textwrap.dedent("""
    import sys, time
    from atdata_lab.errors import EntryConflictError
    from atdata_lab.providers.postgres import PostgresProvider
    dsn, tag, start_at, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    prov = PostgresProvider(dsn)
    time.sleep(max(0.0, start_at - time.time()))
    won = 0
    for i in range(n):
        row = {"name": f"n{i:03d}", "cid": tag, "schema_ref": "x", "data_urls": [f"/{tag}/{i}"],
               "num_samples": 1, "num_shards": 1, "size_bytes": 1, "shard_checksums": ["0"],
               "metadata": {}, "description": tag, "tags": [tag], "license": None,
               "created_at": "2026", "published_uri": None}
        shard = {"url": f"/{tag}/{i}", "entry": row["name"], "checksum": "0", "size": 1, "num_samples": 1}
        try:
            prov.put_entry(row, [shard])
            won += 1
        except EntryConflictError:
            pass
    print(won)
""")


def test_provider_put_entry_from_two_processes_is_exactly_once(postgres_dsn):
    """The provider alone: 2 processes x 150 put_entry on the same names. Each name is stored once,
    the counters agree, and only the winners' shard rows exist."""
    n = 150
    start_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PUTTER, postgres_dsn, tag, str(start_at), str(n)],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-3000:] for _, e in outs]
    assert sum(int(o) for o, _ in outs) == n
    prov = PostgresProvider(postgres_dsn)
    rows, total = prov.search(limit=None, sort="name")
    assert total == len(rows) == n and prov.search(limit=0)[1] == n
    shards = prov.get_shards([f"/{t}/{i}" for t in "ab" for i in range(n)])
    assert sorted(shards) == sorted(r["data_urls"][0] for r in rows)
    assert prov.search(tags=["a"])[1] + prov.search(tags=["b"])[1] == n


def _backend_pid(index) -> int:
    return index.provider._read(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])


def _forked_lookup(index, q) -> None:
    q.put((index.get_entry_by_name("shared").num_samples, len(index), _backend_pid(index)))
    index.write(experiment(2, seed=5), name="from-child", progress=False)


def test_a_forked_child_opens_its_own_session(postgres_dsn, tmp_path):
    """An Index inherited through fork() (multiprocessing workers) never uses the parent's socket."""
    import multiprocessing as mp

    index = atdata.Index(dsn=postgres_dsn, data_store=atdata.LocalDiskStore(tmp_path))
    index.write(experiment(3), name="shared", progress=False)
    session = _backend_pid(index)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_forked_lookup, args=(index, q))
    child.start()
    got = q.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0 and got[:2] == (3, 1) and got[2] != session  # the child's own session
    assert sorted(e.name for e in index.list_entries()) == ["from-child", "shared"]
    assert _backend_pid(index) == session  # the parent's session was neither used nor ended


# -------------------------------------------------------------------------- the DSN's password


def test_password_is_masked_in_reprs_errors_logs_and_journal(postgres_server, tmp_path, atdata_home, caplog):
    """A non-superuser whose password has URL-special characters owns its own database (so it may
    create pg_trgm itself): its password appears in no repr, error, log record or journal file."""
    secret = "s3cr#t@p:ss/w%rd"
    role, dbname = "alice_" + os.urandom(3).hex(), "t_alice_" + os.urandom(3).hex()
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute(f"CREATE DATABASE {dbname} OWNER {role}")
    try:
        dsn = f"postgresql://{role}:{quote(secret, safe='')}@127.0.0.1:{postgres_server.port}/{dbname}"
        forms = {secret, quote(secret, safe=""), quote(secret)}
        caplog.set_level(logging.DEBUG)
        index = atdata.Index(dsn=dsn, data_store=atdata.LocalDiskStore(tmp_path / "data"))
        index.write(experiment(3), name="seen", progress=False)
        assert index.search("seen").total == 1
        shown = [
            repr(index),
            repr(index.provider),
            str(index.provider.where),
            repr(vars(index.provider)),
            index._index_id(),
            caplog.text,
        ]
        shown += [p.read_text(errors="replace") for p in atdata_home.rglob("*") if p.is_file()]
        assert f"{role}:***@127.0.0.1:{postgres_server.port}/{dbname}" in repr(index.provider)
        for text in shown:
            assert not any(f in text for f in forms), text
        # a refused login names the fix and hides both passwords
        wrong = dsn.replace(quote(secret, safe=""), quote("wr0ng-" + secret, safe=""))
        with pytest.raises(IndexUnavailableError, match="password") as err:
            atdata.Index(dsn=wrong)
        msg = str(err.value)
        assert f"127.0.0.1:{postgres_server.port}" in msg and "wr0ng" not in msg
        assert not any(f in msg for f in forms) and err.value.__cause__ is None
        assert mask_dsn("host=h port=5 user=u password=pw dbname=d") == "postgresql://u:***@h:5/d"
        index.provider.close()
    finally:
        postgres_server.drop_database(dbname)
        with postgres_server.connect() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


# -------------------------------------------------------------------------- server away


def test_connection_refused_names_host_port_and_the_fix():
    port = free_ports(1)[0]  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(IndexUnavailableError) as err:
        atdata.Index(dsn=f"postgresql://atdata:hunter2@127.0.0.1:{port}/atdata")
    msg = str(err.value)
    assert isinstance(err.value, ConnectionError) and isinstance(err.value, atdata.AtdataLabError)
    assert f"127.0.0.1:{port}" in msg and "pg_ctl" in msg and "Index(path=...)" in msg
    assert "hunter2" not in msg and "atdata:***@" in msg
    assert time.monotonic() - t0 < 5


def test_missing_database_says_to_create_it(postgres_server):
    with pytest.raises(IndexUnavailableError, match="createdb"):
        atdata.Index(dsn=postgres_server.dsn("no_such_db"))


def test_server_down_then_back_the_same_index_goes_on(start_postgres, tmp_path):
    """A stopped server gives a clear error naming host:port; after a restart the same Index works
    (its stale connection is replaced) and nothing committed was lost."""
    server = start_postgres()
    index = atdata.Index(dsn=server.create_database("idx"), data_store=atdata.LocalDiskStore(tmp_path))
    index.write(experiment(3), name="kept", progress=False)
    server.stop()
    with pytest.raises(IndexUnavailableError, match=f"127.0.0.1:{server.port}") as err:
        index.get_entry_by_name("kept")
    assert "running" in str(err.value)
    with pytest.raises(IndexUnavailableError):
        index.write(experiment(2, seed=1), name="not-now", progress=False)
    server.start()
    assert index.get_entry_by_name("kept").num_samples == 3
    index.write(experiment(2, seed=1), name="later", progress=False)
    assert sorted(e.name for e in index.list_entries()) == ["kept", "later"]
    server.restart(crash=True)  # a SIGKILLed server: committed entries survive (WAL)
    assert sorted(e.name for e in index.list_entries()) == ["kept", "later"]


def test_missing_psycopg_names_the_extra(monkeypatch):
    """psycopg's absence is simulated (it is installed by `make test`): the error names the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"atdata-lab\[postgres\]"):
        atdata.Index(dsn="postgresql://u:p@127.0.0.1:1/x")


def test_a_malformed_dsn_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="could not be parsed") as err:
        atdata.Index(dsn="host=db.example password=topsecret garbage")
    assert "topsecret" not in str(err.value)
    with pytest.raises(ValueError, match="dsn="):
        atdata.Index("postgres")
