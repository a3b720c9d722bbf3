"""The PostgreSQL index provider: one index shared by a team, on a real PostgreSQL server (12+).

Tables (prefixed ``atdata_lab_`` so they never collide with atdata 0.7's own ``schemas``, ``labels``
... tables in the same database):

* ``atdata_lab_entries``: one row per entry. URL and tag lists are ``text[]`` (GIN-indexed: the
  lookups behind ``urls_in_use`` and tag filters are index scans), ``metadata`` is JSON text kept
  byte for byte; ``first_tag`` and ``schema_name`` are generated columns. Every sortable column has
  a ``(column NULLS FIRST, name)`` b-tree, so a page is an index walk in either direction; text
  search is ``LIKE`` on a trigram index (``pg_trgm``, when the database allows the extension).
* ``atdata_lab_shards``, ``atdata_lab_schemas``, ``atdata_lab_state``: shard rows (with their packed
  offset indexes), schema rows and small JSON state records (labels, lenses, promotion intents).
* ``atdata_lab_meta``: the change counter, the entry count (kept by statement triggers, so an
  unfiltered page needs no ``count(*)``) and the layout version.

String columns use the ``"C"`` collation: sorting is by bytes, whatever the database's locale,
exactly as SQLite and Redis sort. Every write is one transaction whose first statement bumps the
change counter: that row lock serialises writers (as SQLite's ``BEGIN IMMEDIATE`` does), so a
read-then-write (``put_entry`` without ``replace``) cannot race another process; readers never wait.

To keep several indexes in one database, give each its own schema through the DSN:
``postgresql://u:pw@host/db?options=-csearch_path%3Dteam_a`` (the schema must exist).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..errors import EntryConflictError, InvalidArgumentError, StoreError
from ..schema import SCHEMA_REF_PREFIX
from .base import ENTRY_KEYS, SORT_COLUMNS, IndexProvider, IndexUnavailableError, search_text

__all__ = ["PostgresProvider", "IndexUnavailableError", "mask_dsn"]

LAYOUT = 1  # the table layout written below; a database with a newer one is refused
_T = "atdata_lab_"
_ENTRY_COLS = ", ".join(ENTRY_KEYS)
_SHARD_COLS = ("url", "entry", "checksum", "size", "num_samples", "offsets")
_SCHEMA_COLS = ("ref", "name", "version", "content_cid", "record", "created_at", "published_uri")
_BUMP = f"UPDATE {_T}meta SET value = value + 1 WHERE key = 'generation'"

_P = len(SCHEMA_REF_PREFIX)
# one (column NULLS FIRST, name) b-tree per sortable column: a page is an index walk, either way
_SORT_INDEXES = "\n".join(
    f"CREATE INDEX IF NOT EXISTS {_T}entries_by_{c} ON {_T}entries "
    f"({'first_tag' if c == 'tags' else c} NULLS FIRST, name);"
    for c in SORT_COLUMNS
    if c != "name"
)
_DDL = f"""
CREATE TABLE IF NOT EXISTS {_T}meta (key TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {_T}entries (
    name TEXT COLLATE "C" PRIMARY KEY,
    cid TEXT COLLATE "C" NOT NULL,
    schema_ref TEXT COLLATE "C" NOT NULL,
    data_urls TEXT[],
    num_samples BIGINT,
    num_shards BIGINT,
    size_bytes BIGINT,
    shard_checksums TEXT[],
    metadata TEXT,
    description TEXT,
    tags TEXT[],
    license TEXT COLLATE "C",
    created_at TEXT COLLATE "C",
    published_uri TEXT COLLATE "C",
    search_text TEXT NOT NULL,
    first_tag TEXT COLLATE "C" GENERATED ALWAYS AS (tags[1]) STORED,
    schema_name TEXT COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN left(schema_ref, {_P}) = '{SCHEMA_REF_PREFIX}' AND strpos(schema_ref, '@') > 0
        THEN substr(schema_ref, {_P + 1}, strpos(schema_ref, '@') - {_P + 1}) ELSE schema_ref END
    ) STORED
);
CREATE INDEX IF NOT EXISTS {_T}entries_cid ON {_T}entries (cid);
CREATE INDEX IF NOT EXISTS {_T}entries_schema_name ON {_T}entries (schema_name, name);
CREATE INDEX IF NOT EXISTS {_T}entries_tags ON {_T}entries USING gin (tags);
CREATE INDEX IF NOT EXISTS {_T}entries_urls ON {_T}entries USING gin (data_urls);
{_SORT_INDEXES}
CREATE TABLE IF NOT EXISTS {_T}shards (
    url TEXT COLLATE "C" PRIMARY KEY, entry TEXT, checksum TEXT, size BIGINT, num_samples BIGINT, offsets BYTEA
);
CREATE TABLE IF NOT EXISTS {_T}schemas (
    ref TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, version TEXT COLLATE "C" NOT NULL,
    content_cid TEXT, record TEXT NOT NULL, created_at TEXT COLLATE "C", published_uri TEXT
);
CREATE INDEX IF NOT EXISTS {_T}schemas_name ON {_T}schemas (name, created_at NULLS FIRST);
CREATE INDEX IF NOT EXISTS {_T}schemas_content_cid ON {_T}schemas (content_cid);
CREATE TABLE IF NOT EXISTS {_T}state (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO {_T}meta (key, value) VALUES ('generation', 0), ('entries', 0) ON CONFLICT (key) DO NOTHING;
CREATE OR REPLACE FUNCTION {_T}count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {_T}meta SET value = value + (SELECT count(*) FROM added) WHERE key = 'entries';
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {_T}count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {_T}meta SET value = value - (SELECT count(*) FROM removed) WHERE key = 'entries';
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS {_T}entries_added ON {_T}entries;
DROP TRIGGER IF EXISTS {_T}entries_removed ON {_T}entries;
CREATE TRIGGER {_T}entries_added AFTER INSERT ON {_T}entries REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {_T}count_added();
CREATE TRIGGER {_T}entries_removed AFTER DELETE ON {_T}entries REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {_T}count_removed();
"""
# Substring search without a table scan, where the database lets us create pg_trgm (a "trusted"
# extension since PostgreSQL 13: the database's owner may create it).
_TRIGRAM = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS {_T}entries_text ON {_T}entries USING gin (search_text gin_trgm_ops);
"""


def _dsn_parts(dsn: str) -> dict[str, str] | None:
    """The DSN's keywords (libpq's parser), or None when it is malformed or psycopg is missing."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception:
        return None


def mask_dsn(dsn: str) -> str:
    """The DSN as ``postgresql://user:***@host:port/dbname``: never its password."""
    d = _dsn_parts(dsn)
    if d is None:
        return "postgresql://(unparsable DSN)"
    user = quote(d.get("user", ""), safe="")
    auth = f"{user}:***@" if "password" in d else (f"{user}@" if user else "")
    host = d.get("host") or d.get("hostaddr") or ""
    port = f":{d['port']}" if d.get("port") else ""
    extra = sorted(k for k in d if k not in ("user", "password", "host", "hostaddr", "port", "dbname"))
    query = ("?" + "&".join(f"{k}=..." for k in extra)) if extra else ""
    return f"postgresql://{auth}{quote(host, safe='/,')}{port}/{quote(d.get('dbname', ''), safe='')}{query}"


class _Secret:
    """A DSN or password that never shows itself: not in a repr, a traceback's locals or ``vars()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"


def _row(values: tuple | list) -> dict[str, Any]:
    d = dict(zip(ENTRY_KEYS, values))
    if d["metadata"] is not None:
        d["metadata"] = json.loads(d["metadata"])
    return d


def _entry_params(row: dict[str, Any]) -> list[Any]:
    out = []
    for k in ENTRY_KEYS:
        v = row.get(k)
        if k == "metadata":
            v = json.dumps(v)
        elif k in ("data_urls", "shard_checksums", "tags") and v is not None:
            v = list(v)
        out.append(v)
    return out


class PostgresProvider(IndexProvider):
    """An index in PostgreSQL (12 or newer), through psycopg 3.

    Args:
        dsn: A libpq connection string or URI, e.g. ``postgresql://user:password@host:5432/dbname``.
            It is kept private: reprs and errors show it with the password masked.
        connect_timeout: Seconds to wait for the server when connecting.

    Raises:
        ImportError: psycopg is missing (``pip install 'atdata-lab[postgres]'``).
        IndexUnavailableError: the server cannot be reached or refuses the login (the message
            names host:port and the fix).
    """

    kind = "postgres"

    def __init__(self, dsn: str, *, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError:
            raise ImportError(
                "the PostgreSQL index needs psycopg 3: pip install 'atdata-lab[postgres]'"
            ) from None
        if not isinstance(dsn, str) or not dsn.strip():
            raise InvalidArgumentError(
                "the PostgreSQL index needs dsn='postgresql://user:password@host:5432/dbname'"
            )
        parts = _dsn_parts(dsn)
        if parts is None:  # libpq's own message may quote the DSN, password and all: not shown
            raise InvalidArgumentError(
                "the PostgreSQL DSN could not be parsed (it is not shown: it may hold a password); "
                "give postgresql://user:password@host:5432/dbname or 'host=... port=... dbname=...'"
            )
        self._pg = psycopg
        self._dsn = _Secret(dsn)
        self._password = _Secret(parts.get("password") or "")
        self.where = mask_dsn(dsn)
        host = parts.get("host") or parts.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
        port = parts.get("port") or os.environ.get("PGPORT") or "5432"
        self.address = f"{host}:{port}"
        self._timeout = max(1, int(round(connect_timeout)))
        self._lock = threading.RLock()
        self._conn: Any = None
        self._cur: Any = None
        self._pid = os.getpid()
        with self._lock:
            self._connect()
            try:
                self._create()
            except psycopg.OperationalError as e:
                self._reset()
                raise self._unavailable(e, lost=True) from None
            except psycopg.DatabaseError as e:
                self._reset()
                raise self._failed(e) from None

    def __repr__(self) -> str:
        return f"PostgresProvider({self.where!r})"

    # ------------------------------------------------------------------ plumbing
    def _mask(self, text: str) -> str:
        pw = self._password.get()
        if pw:
            for form in {pw, quote(pw, safe=""), quote(pw)}:
                text = text.replace(form, "***")
        return text

    def _unavailable(self, e: BaseException, *, lost: bool = False) -> IndexUnavailableError:
        detail = self._mask(" ".join(str(e).split()))
        low = detail.lower()
        if "password" in low or "authentication" in low or ("role" in low and "does not exist" in low):
            fix = "check the user and password in the DSN (or PGPASSWORD, ~/.pgpass)"
        elif "database" in low and "does not exist" in low:
            fix = "create the database first (createdb NAME, or CREATE DATABASE) or fix the DSN's dbname"
        else:
            fix = (
                "is PostgreSQL running and listening there? Start it (pg_ctl -D DATADIR start, or your "
                "service manager), fix the DSN's host and port, or use the SQLite index (Index(path=...))"
            )
        what = "lost the connection to" if lost else "cannot reach"
        outcome = " (the change in progress may or may not have been stored)" if lost else ""
        return IndexUnavailableError(
            f"{what} the PostgreSQL index at {self.address} ({self.where}){outcome}: {detail}; {fix}"
        )

    def _connect(self) -> None:
        pg = self._pg
        try:
            self._conn = pg.connect(
                self._dsn.get(),
                autocommit=True,
                connect_timeout=self._timeout,
                application_name="atdata-lab",
            )
        except pg.OperationalError as e:
            raise self._unavailable(e) from None
        except pg.ProgrammingError as e:  # e.g. an unknown keyword: named, the password masked
            raise InvalidArgumentError(
                f"invalid PostgreSQL DSN {self.where}: {self._mask(str(e))}; "
                "give postgresql://user:password@host:5432/dbname"
            ) from None

    def _live(self) -> Any:
        if self._pid != os.getpid():  # a forked child: the parent's session is not ours to use or end
            self._conn = self._cur = None
            self._pid = os.getpid()
        if self._conn is None or self._conn.closed:
            self._connect()
        return self._conn

    def _reset(self) -> None:
        self._cur = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # it is already broken
                pass
        self._conn = None

    def _create(self) -> None:
        """Create the tables once (an advisory lock keeps concurrent first connections apart)."""
        pg = self._pg
        conn = self._conn
        layout = self._layout(conn)
        if layout == LAYOUT:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('atdata_lab layout'))")
            layout = self._layout(conn)
            if layout is None:
                conn.execute(_DDL)
                try:
                    with conn.transaction():  # a savepoint: without it the index still works, by scans
                        conn.execute(_TRIGRAM)
                except pg.Error:
                    pass
                conn.execute(
                    f"INSERT INTO {_T}meta (key, value) VALUES ('layout', %s) ON CONFLICT (key) DO NOTHING",
                    (LAYOUT,),
                )
                layout = LAYOUT
        if layout > LAYOUT:
            raise InvalidArgumentError(
                f"the PostgreSQL index at {self.where} has table layout {layout}, newer than this "
                f"atdata-lab knows ({LAYOUT}): upgrade atdata-lab"
            )

    def _layout(self, conn: Any) -> int | None:
        found = conn.execute("SELECT to_regclass(%s)", (f"{_T}meta",)).fetchone()[0]
        if found is None:
            return None
        r = conn.execute(f"SELECT value FROM {_T}meta WHERE key = 'layout'").fetchone()
        return int(r[0]) if r else None

    def _read(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(cursor)`` on the connection's one reading cursor (binary rows; reusing it
        halves the client's cost of a lookup); a connection left stale (a server restart) is
        replaced once."""
        pg = self._pg
        with self._lock:
            for attempt in (0, 1):
                conn = self._live()
                if self._cur is None or self._cur.connection is not conn:
                    self._cur = conn.cursor(binary=True)
                try:
                    return fn(self._cur)
                except pg.OperationalError as e:
                    if attempt == 0 and conn.broken:
                        self._reset()
                        continue
                    raise self._unavailable(e, lost=conn.broken) from None
                except pg.DatabaseError as e:
                    raise self._failed(e) from None

    def _failed(self, e: BaseException) -> Exception:
        detail = self._mask(" ".join(str(e).split()))
        if isinstance(e, self._pg.DataError):
            return InvalidArgumentError(f"PostgreSQL refused a value for the index at {self.where}: {detail}")
        return StoreError(
            f"the PostgreSQL index at {self.where} failed: {detail}; check the server's log, and that "
            "the DSN's user may create (once), read and write the atdata_lab_* tables"
        )

    def _write(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(conn)`` in one transaction that first takes the change counter's row lock.

        A stale connection found before anything was sent is replaced and the write retried; once
        the transaction began, a lost connection is reported (its outcome is unknown).
        """
        pg = self._pg
        with self._lock:
            for attempt in (0, 1):
                conn = self._live()
                began = False
                try:
                    with conn.transaction():
                        conn.execute(_BUMP)
                        began = True
                        return fn(conn)
                except pg.OperationalError as e:
                    if not began and attempt == 0 and conn.broken:
                        self._reset()
                        continue
                    raise self._unavailable(e, lost=began) from None
                except pg.DatabaseError as e:
                    raise self._failed(e) from None

    # ------------------------------------------------------------------ entries
    def put_entry(self, row: dict[str, Any], shards: list[dict[str, Any]], *, replace: bool = False) -> None:
        name = row["name"]
        params = [*_entry_params(row), search_text(row)]

        def body(c: Any) -> None:
            old = c.execute(f"SELECT data_urls FROM {_T}entries WHERE name = %s", (name,)).fetchone()
            if old is not None and not replace:
                raise EntryConflictError(
                    f"an entry named {name!r} already exists; pass overwrite=True to replace it"
                )
            if old is not None:
                c.execute(f"DELETE FROM {_T}entries WHERE name = %s", (name,))
            c.execute(
                f"INSERT INTO {_T}entries ({_ENTRY_COLS}, search_text) "
                f"VALUES ({', '.join(['%s'] * (len(ENTRY_KEYS) + 1))})",
                params,
            )
            if old is not None:
                self._drop_unused_shards(c, list(old[0] or []))
            self._put_shards(c, shards)

        self._write(body)

    @staticmethod
    def _drop_unused_shards(c: Any, urls: list[str]) -> None:
        """Delete the shard rows of ``urls`` that no entry uses any more."""
        if urls:
            c.execute(
                f"DELETE FROM {_T}shards s WHERE s.url = ANY(%s) AND NOT EXISTS "
                f"(SELECT 1 FROM {_T}entries e WHERE e.data_urls @> ARRAY[s.url])",
                (urls,),
            )

    @staticmethod
    def _put_shards(c: Any, shards: list[dict[str, Any]]) -> None:
        if not shards:
            return
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {_T}shards ({', '.join(_SHARD_COLS)}) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (url) DO UPDATE SET entry = EXCLUDED.entry, checksum = EXCLUDED.checksum, "
                "size = EXCLUDED.size, num_samples = EXCLUDED.num_samples, offsets = EXCLUDED.offsets",
                [
                    (s["url"], s.get("entry"), s["checksum"], s["size"], s["num_samples"], s.get("offsets"))
                    for s in shards
                ],
            )

    def put_shards(self, shards: list[dict[str, Any]]) -> None:
        self._write(lambda c: self._put_shards(c, shards))

    def get_entry(self, name: str) -> dict[str, Any] | None:
        r = self._read(
            lambda c: c.execute(
                f"SELECT {_ENTRY_COLS} FROM {_T}entries WHERE name = %s", (name,), prepare=True
            ).fetchone()
        )
        return _row(r) if r else None

    def get_entry_by_cid(self, cid: str) -> dict[str, Any] | None:
        r = self._read(
            lambda c: c.execute(
                f"SELECT {_ENTRY_COLS} FROM {_T}entries WHERE cid = %s "
                "ORDER BY created_at DESC NULLS LAST, name DESC LIMIT 1",
                (cid,),
                prepare=True,
            ).fetchone()
        )
        return _row(r) if r else None

    def update_entry(self, name: str, **fields: Any) -> None:
        bad = set(fields) - (set(ENTRY_KEYS) - {"name"})
        if bad:
            raise InvalidArgumentError(f"unknown or unchangeable entry fields {sorted(bad)}")
        if not fields:
            return
        probe = {k: fields[k] for k in fields}
        params = [v for k, v in zip(ENTRY_KEYS, _entry_params(probe)) if k in fields]
        sets = ", ".join(f"{k} = %s" for k in ENTRY_KEYS if k in fields)

        def body(c: Any) -> None:
            old = c.execute(f"SELECT data_urls FROM {_T}entries WHERE name = %s", (name,)).fetchone()
            if old is None:
                return
            c.execute(f"UPDATE {_T}entries SET {sets} WHERE name = %s", (*params, name))
            if "data_urls" in fields:
                self._drop_unused_shards(c, [u for u in old[0] or [] if u not in set(fields["data_urls"])])
            if "tags" in fields or "description" in fields:
                r = c.execute(f"SELECT {_ENTRY_COLS} FROM {_T}entries WHERE name = %s", (name,)).fetchone()
                c.execute(
                    f"UPDATE {_T}entries SET search_text = %s WHERE name = %s", (search_text(_row(r)), name)
                )

        self._write(body)

    def delete_entry(self, name: str) -> dict[str, Any] | None:
        def body(c: Any) -> dict[str, Any] | None:
            r = c.execute(
                f"DELETE FROM {_T}entries WHERE name = %s RETURNING {_ENTRY_COLS}", (name,)
            ).fetchone()
            if r is None:
                return None
            row = _row(r)
            self._drop_unused_shards(c, list(row["data_urls"] or []))
            return row

        return self._write(body)

    def urls_in_use(self, urls: list[str], *, exclude: str | None = None) -> set[str]:
        if not urls:
            return set()
        q = (
            f"SELECT DISTINCT u FROM {_T}entries e, unnest(e.data_urls) AS u "
            "WHERE e.data_urls && %s::text[] AND u = ANY(%s)"
        )
        args: list[Any] = [list(urls), list(urls)]
        if exclude is not None:
            q += " AND e.name <> %s"
            args.append(exclude)
        return {r[0] for r in self._read(lambda c: c.execute(q, args).fetchall())}

    def search(
        self,
        *,
        text: str | None = None,
        tags: list[str] | None = None,
        schema: str | None = None,
        published: bool | None = None,
        sort: str = "created_at",
        descending: bool = True,
        offset: int = 0,
        limit: int | None = 25,
    ) -> tuple[list[dict[str, Any]], int]:
        if sort not in SORT_COLUMNS:
            raise InvalidArgumentError(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_COLUMNS)}")
        where: list[str] = []
        args: list[Any] = []
        if text:
            esc = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("search_text LIKE %s")  # a trigram index scan where pg_trgm is there
            args.append(f"%{esc}%")
        if tags:
            where.append("tags @> %s::text[]")
            args.append(list(tags))
        if schema:
            if "@" in schema or "://" in schema:
                where.append("schema_ref = %s")
            else:  # a schema name, exactly (case matters): any version
                where.append("schema_name = %s")
            args.append(schema)
        if published is not None:
            where.append("published_uri IS NOT NULL" if published else "published_uri IS NULL")
        clause = (" WHERE " + " AND ".join(where)) if where else ""

        key = "first_tag" if sort == "tags" else sort

        # ties go in name order, reversed when descending; NULLs first ascending (as in SQLite)
        def order(k: str, n: str) -> str:
            d = "DESC" if descending else "ASC"
            if sort == "name":
                return f"{n} {d}"
            return f"{k} {d} NULLS {'LAST' if descending else 'FIRST'}, {n} {d}"

        page = (f" LIMIT {int(limit)}" if limit is not None else "") + f" OFFSET {max(0, int(offset))}"
        cols = ", ".join("e." + k for k in ENTRY_KEYS)
        rows_of = f"JOIN {_T}entries e ON e.name = p.name ORDER BY {order('e.' + key, 'e.name')}"
        if where:
            # the matches first (bitmap scans of the filters' indexes), then a top-N sort of only
            # them: walking the sort column's index would read every row to count the matches
            count = f"SELECT count(*) FROM {_T}entries{clause}"
            query = (
                f"WITH m AS MATERIALIZED (SELECT name, {key} AS k FROM {_T}entries{clause}) "
                f"SELECT {cols}, (SELECT count(*) FROM m) FROM "
                f"(SELECT name FROM m ORDER BY {order('k', 'name')}{page}) p {rows_of}"
            )
        else:
            # a walk of the sort column's index for the page's names (a deep page never reads the
            # rows it skips), then their rows; the total is the trigger-kept count
            count = f"SELECT value FROM {_T}meta WHERE key = 'entries'"
            query = (
                f"SELECT {cols}, ({count}) FROM "
                f"(SELECT name FROM {_T}entries ORDER BY {order(key, 'name')}{page}) p {rows_of}"
            )

        def run(c: Any) -> tuple[list[dict[str, Any]], int]:
            if limit == 0:
                return [], int(c.execute(count, args).fetchone()[0])
            got = c.execute(query, args).fetchall()
            if got:
                return [_row(r[:-1]) for r in got], int(got[0][-1])
            return [], int(c.execute(count, args).fetchone()[0])  # a page past the end

        return self._read(run)

    def get_shards(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        if not urls:
            return {}
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {', '.join(_SHARD_COLS)} FROM {_T}shards WHERE url = ANY(%s)", (list(urls),)
            ).fetchall()
        )
        return {r[0]: dict(zip(_SHARD_COLS, r)) for r in rows}

    def get_shard_counts(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        if not urls:
            return {}
        cols = ("url", "checksum", "size", "num_samples", "has_offsets")
        rows = self._read(
            lambda c: c.execute(
                "SELECT url, checksum, size, num_samples, coalesce(octet_length(offsets), 0) > 0 "
                f"FROM {_T}shards WHERE url = ANY(%s)",
                (list(urls),),
            ).fetchall()
        )
        return {r[0]: dict(zip(cols, r)) for r in rows}

    # ------------------------------------------------------------------ schemas
    @staticmethod
    def _schema_row(r: tuple) -> dict[str, Any]:
        d = dict(zip(_SCHEMA_COLS, r))
        d["record"] = json.loads(d["record"])
        return d

    def put_schema(self, row: dict[str, Any]) -> bool:
        values = (
            row["ref"],
            row["name"],
            row["version"],
            row["content_cid"],
            json.dumps(row["record"]),
            row.get("created_at"),
            row.get("published_uri"),
        )
        return self._write(
            lambda c: (
                c.execute(
                    f"INSERT INTO {_T}schemas ({', '.join(_SCHEMA_COLS)}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (ref) DO NOTHING",
                    values,
                ).rowcount
                == 1
            )
        )

    def get_schema(self, ref: str) -> dict[str, Any] | None:
        r = self._read(
            lambda c: c.execute(
                f"SELECT {', '.join(_SCHEMA_COLS)} FROM {_T}schemas WHERE ref = %s", (ref,), prepare=True
            ).fetchone()
        )
        return self._schema_row(r) if r else None

    def list_schemas(self, name: str | None = None) -> list[dict[str, Any]]:
        q = f"SELECT {', '.join(_SCHEMA_COLS)} FROM {_T}schemas"
        args: tuple = ()
        if name is not None:
            q += " WHERE name = %s"
            args = (name,)
        rows = self._read(lambda c: c.execute(q + " ORDER BY name, created_at NULLS FIRST", args).fetchall())
        return [self._schema_row(r) for r in rows]

    def update_schema(self, ref: str, **fields: Any) -> None:
        allowed = {"published_uri"}
        if set(fields) - allowed:
            raise InvalidArgumentError(f"only {allowed} can change on a stored schema")
        if "published_uri" in fields:
            self._write(
                lambda c: c.execute(
                    f"UPDATE {_T}schemas SET published_uri = %s WHERE ref = %s",
                    (fields["published_uri"], ref),
                )
            )

    # ------------------------------------------------------------------ state
    def get_state(self, key: str) -> dict[str, Any] | None:
        r = self._read(
            lambda c: c.execute(
                f"SELECT value FROM {_T}state WHERE key = %s", (key,), prepare=True
            ).fetchone()
        )
        return json.loads(r[0]) if r else None

    def set_state(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self._write(lambda c: c.execute(f"DELETE FROM {_T}state WHERE key = %s", (key,)))
        else:
            text = json.dumps(value)
            self._write(
                lambda c: c.execute(
                    f"INSERT INTO {_T}state (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, text),
                )
            )

    def list_state(self, prefix: str) -> dict[str, dict[str, Any]]:
        esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._read(
            lambda c: c.execute(
                f"SELECT key, value FROM {_T}state WHERE key LIKE %s ORDER BY key", (esc + "%",)
            ).fetchall()
        )
        return {k: json.loads(v) for k, v in rows}

    def generation(self) -> int:
        return int(
            self._read(
                lambda c: c.execute(
                    f"SELECT value FROM {_T}meta WHERE key = 'generation'", prepare=True
                ).fetchone()[0]
            )
        )

    def close(self) -> None:
        with self._lock:
            self._reset()
