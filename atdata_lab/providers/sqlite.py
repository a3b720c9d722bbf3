"""The SQLite index provider (the default): one file, WAL, shareable by several kernels."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import EntryConflictError, InvalidArgumentError, StoreError
from ..schema import SCHEMA_REF_PREFIX
from .base import ENTRY_KEYS, SORT_COLUMNS, IndexProvider, search_text

__all__ = ["SQLiteProvider"]

_JSON_COLS = ("data_urls", "shard_checksums", "metadata", "tags")
_SELECT = "SELECT " + ", ".join(ENTRY_KEYS) + " FROM entries"


def _row(values: tuple) -> dict[str, Any]:
    d = dict(zip(ENTRY_KEYS, values))
    for c in _JSON_COLS:
        v = d[c]
        d[c] = json.loads(v) if v is not None else None
    return d


class SQLiteProvider(IndexProvider):
    """Entries, shards and schemas in a SQLite file (built on sqlite-utils).

    WAL journaling and a 30 s busy timeout let several kernels and processes share one file;
    every write runs in a ``BEGIN IMMEDIATE`` transaction.

    Args:
        path: The database file (created with its folder if missing).
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        self.conn = conn
        self._lock = threading.RLock()
        self.db = sqlite_utils.Database(conn)
        self._enable_wal()
        with self._write():
            self._create()
        conn.execute("PRAGMA synchronous = NORMAL")

    def __repr__(self) -> str:
        return f"SQLiteProvider({str(self.path)!r})"

    def _enable_wal(self, timeout: float = 30.0) -> None:
        """Switch the file to WAL before anything else touches it, retrying while another process holds it.

        SQLite does not call the busy handler for a journal-mode change, so processes that open a
        new file together would otherwise get "database is locked" here. A file system without
        WAL support keeps its mode (the switch returns the old one); writes are still serialised.
        """
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = wal").fetchone()
                return
            except sqlite3.OperationalError as e:
                error = self._unwritable(e)
                if error is not None:
                    raise error from None
                if "locked" not in str(e).lower():
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the index {self.path} stayed locked by another process for {timeout:.0f} s "
                        "while opening it: close the other kernel or process that holds it, or wait and retry"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _create(self) -> None:
        db = self.db
        db.table("entries").create(
            {
                "name": str,
                "cid": str,
                "schema_ref": str,
                "data_urls": str,
                "num_samples": int,
                "num_shards": int,
                "size_bytes": int,
                "shard_checksums": str,
                "metadata": str,
                "description": str,
                "tags": str,
                "license": str,
                "created_at": str,
                "published_uri": str,
                "search_text": str,
            },
            pk="name",
            if_not_exists=True,
        )
        db.table("entries").create_index(["cid"], if_not_exists=True)
        for col in SORT_COLUMNS:  # covering (column, name) indexes: a page is an index walk
            if col not in ("name", "tags"):
                db.table("entries").create_index([col, "name"], if_not_exists=True)
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS idx_entries_first_tag ON entries(json_extract(tags, '$[0]'), name)"
        )
        cols = {r[1] for r in self.conn.execute("PRAGMA table_xinfo(entries)")}
        if "schema_name" not in cols:  # the schema's name (any version), for exact, indexed filtering
            self.conn.execute(
                "ALTER TABLE entries ADD COLUMN schema_name TEXT GENERATED ALWAYS AS ("
                f"CASE WHEN schema_ref LIKE '{SCHEMA_REF_PREFIX}%' AND instr(schema_ref, '@') > 0 "
                f"THEN substr(schema_ref, {len(SCHEMA_REF_PREFIX) + 1}, instr(schema_ref, '@') - {len(SCHEMA_REF_PREFIX) + 1}) "
                "ELSE schema_ref END) VIRTUAL"
            )
        self.conn.execute("CREATE INDEX IF NOT EXISTS idx_entries_schema_name ON entries(schema_name, name)")
        self._create_fts()
        db.table("entry_tags").create({"name": str, "tag": str}, pk=("name", "tag"), if_not_exists=True)
        db.table("entry_urls").create({"name": str, "url": str}, pk=("name", "url"), if_not_exists=True)
        db.table("entry_urls").create_index(["url"], if_not_exists=True)
        db.table("entry_tags").create_index(["tag"], if_not_exists=True)
        db.table("shards").create(
            {"url": str, "entry": str, "checksum": str, "size": int, "num_samples": int, "offsets": bytes},
            pk="url",
            if_not_exists=True,
        )
        db.table("shards").create_index(["entry"], if_not_exists=True)
        db.table("schemas").create(
            {
                "ref": str,
                "name": str,
                "version": str,
                "content_cid": str,
                "record": str,
                "created_at": str,
                "published_uri": str,
            },
            pk="ref",
            if_not_exists=True,
        )
        db.table("schemas").create_index(["name"], if_not_exists=True)
        db.table("schemas").create_index(["content_cid"], if_not_exists=True)
        db.table("state").create({"key": str, "value": str}, pk="key", if_not_exists=True)
        db.table("meta").create({"key": str, "value": int}, pk="key", if_not_exists=True)
        self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', 0)")
        if self.conn.execute("SELECT 1 FROM entry_urls LIMIT 1").fetchone() is None:  # older files
            self.conn.execute(
                "INSERT OR IGNORE INTO entry_urls(name, url) SELECT entries.name, j.value "
                "FROM entries, json_each(entries.data_urls) AS j"
            )

    def _create_fts(self) -> None:
        """A trigram full-text index over ``search_text`` (substring search), kept in sync by triggers."""
        c = self.conn
        exists = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries_fts'").fetchone()
        if exists:
            return
        c.execute(
            "CREATE VIRTUAL TABLE entries_fts USING fts5(search_text, content='entries', "
            "content_rowid='rowid', tokenize='trigram')"
        )
        c.execute(
            "CREATE TRIGGER entries_fts_ai AFTER INSERT ON entries BEGIN "
            "INSERT INTO entries_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END"
        )
        c.execute(
            "CREATE TRIGGER entries_fts_ad AFTER DELETE ON entries BEGIN "
            "INSERT INTO entries_fts(entries_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); END"
        )
        c.execute(
            "CREATE TRIGGER entries_fts_au AFTER UPDATE ON entries BEGIN "
            "INSERT INTO entries_fts(entries_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); "
            "INSERT INTO entries_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END"
        )
        c.execute("INSERT INTO entries_fts(entries_fts) VALUES ('rebuild')")

    @contextmanager
    def _write(self):
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                    self.conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                error = self._unwritable(e)
                if error is None:
                    raise
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise error from None

    def _unwritable(self, e: sqlite3.OperationalError) -> StoreError | None:
        """The error to raise when SQLite says the file cannot be written (disk full, I/O, read-only)."""
        text = str(e).lower()
        if "full" in text or "disk i/o" in text or "readonly" in text or "read-only" in text:
            return StoreError(
                f"the index {self.path} cannot be written ({e}): free disk space, or check "
                "that the folder is writable"
            )
        return None

    # ------------------------------------------------------------------ entries
    def put_entry(self, row: dict[str, Any], shards: list[dict[str, Any]], *, replace: bool = False) -> None:
        values = [json.dumps(row[k]) if k in _JSON_COLS else row.get(k) for k in ENTRY_KEYS]
        with self._write() as c:
            exists = c.execute("SELECT 1 FROM entries WHERE name = ?", (row["name"],)).fetchone()
            if exists and not replace:
                raise EntryConflictError(
                    f"an entry named {row['name']!r} already exists; pass overwrite=True to replace it"
                )
            if exists:
                self._remove(c, row["name"])
            c.execute(
                f"INSERT INTO entries ({', '.join(ENTRY_KEYS)}, search_text) VALUES ({', '.join('?' * (len(ENTRY_KEYS) + 1))})",
                (*values, search_text(row)),
            )
            c.executemany(
                "INSERT OR IGNORE INTO entry_tags(name, tag) VALUES (?, ?)",
                [(row["name"], t) for t in row.get("tags") or []],
            )
            c.executemany(
                "INSERT OR IGNORE INTO entry_urls(name, url) VALUES (?, ?)",
                [(row["name"], u) for u in row.get("data_urls") or []],
            )
            self._put_shards(c, shards)

    def _remove(self, c: sqlite3.Connection, name: str) -> None:
        """Delete an entry's rows; shard rows go only when no other entry uses their URL."""
        urls = [r[0] for r in c.execute("SELECT url FROM entry_urls WHERE name = ?", (name,))]
        c.execute("DELETE FROM entries WHERE name = ?", (name,))
        c.execute("DELETE FROM entry_tags WHERE name = ?", (name,))
        c.execute("DELETE FROM entry_urls WHERE name = ?", (name,))
        self._drop_unused_shards(c, urls)

    @staticmethod
    def _drop_unused_shards(c: sqlite3.Connection, urls: list[str]) -> None:
        c.executemany(
            "DELETE FROM shards WHERE url = ? AND NOT EXISTS (SELECT 1 FROM entry_urls WHERE url = ?)",
            [(u, u) for u in urls],
        )

    def urls_in_use(self, urls: list[str], *, exclude: str | None = None) -> set[str]:
        out: set[str] = set()
        with self._lock:
            for i in range(0, len(urls), 500):
                part = urls[i : i + 500]
                q = f"SELECT DISTINCT url FROM entry_urls WHERE url IN ({', '.join('?' * len(part))})"
                args: list[Any] = list(part)
                if exclude is not None:
                    q += " AND name != ?"
                    args.append(exclude)
                out.update(r[0] for r in self.conn.execute(q, args))
        return out

    def _put_shards(self, c: sqlite3.Connection, shards: list[dict[str, Any]]) -> None:
        c.executemany(
            "INSERT OR REPLACE INTO shards(url, entry, checksum, size, num_samples, offsets) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (s["url"], s.get("entry"), s["checksum"], s["size"], s["num_samples"], s.get("offsets"))
                for s in shards
            ],
        )

    def put_shards(self, shards: list[dict[str, Any]]) -> None:
        with self._write() as c:
            self._put_shards(c, shards)

    def get_entry(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            r = self.conn.execute(_SELECT + " WHERE name = ?", (name,)).fetchone()
        return _row(r) if r else None

    def get_entry_by_cid(self, cid: str) -> dict[str, Any] | None:
        with self._lock:
            r = self.conn.execute(
                _SELECT + " WHERE cid = ? ORDER BY created_at DESC LIMIT 1", (cid,)
            ).fetchone()
        return _row(r) if r else None

    def update_entry(self, name: str, **fields: Any) -> None:
        bad = set(fields) - set(ENTRY_KEYS)
        if bad:
            raise InvalidArgumentError(f"unknown entry fields {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        vals = [json.dumps(v) if k in _JSON_COLS else v for k, v in fields.items()]
        with self._write() as c:
            c.execute(f"UPDATE entries SET {sets} WHERE name = ?", (*vals, name))
            if "data_urls" in fields:
                old_urls = [r[0] for r in c.execute("SELECT url FROM entry_urls WHERE name = ?", (name,))]
                c.execute("DELETE FROM entry_urls WHERE name = ?", (name,))
                c.executemany(
                    "INSERT OR IGNORE INTO entry_urls(name, url) VALUES (?, ?)",
                    [(name, u) for u in fields["data_urls"]],
                )
                self._drop_unused_shards(c, old_urls)
            if "tags" in fields or "description" in fields:
                r = c.execute(_SELECT + " WHERE name = ?", (name,)).fetchone()
                if r:
                    row = _row(r)
                    c.execute("UPDATE entries SET search_text = ? WHERE name = ?", (search_text(row), name))
                    c.execute("DELETE FROM entry_tags WHERE name = ?", (name,))
                    c.executemany(
                        "INSERT OR IGNORE INTO entry_tags(name, tag) VALUES (?, ?)",
                        [(name, t) for t in row.get("tags") or []],
                    )

    def delete_entry(self, name: str) -> dict[str, Any] | None:
        with self._write() as c:
            r = c.execute(_SELECT + " WHERE name = ?", (name,)).fetchone()
            if not r:
                return None
            self._remove(c, name)
        return _row(r)

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
        where, args = [], []
        if text:
            needle = text.lower()
            if len(needle.encode()) >= 3:  # trigram index: substring match without a table scan
                where.append("rowid IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)")
                args.append('"' + needle.replace('"', '""') + '"')
            else:
                where.append("search_text LIKE ? ESCAPE '\\'")
                esc = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                args.append(f"%{esc}%")
        for t in tags or []:
            where.append("name IN (SELECT name FROM entry_tags WHERE tag = ?)")
            args.append(t)
        if schema:
            if "@" in schema or "://" in schema:
                where.append("schema_ref = ?")
                args.append(schema)
            else:  # a schema name, exactly (case matters): any version
                where.append("schema_name = ?")
                args.append(schema)
        if published is not None:
            where.append("published_uri IS NOT NULL" if published else "published_uri IS NULL")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        # ties go in name order, reversed when descending (one index walk, like the Redis provider)
        direction = "DESC" if descending else "ASC"
        key = "json_extract(tags, '$[0]')" if sort == "tags" else sort  # tags sort by their first tag
        order = f" ORDER BY {key} {direction}" + ("" if sort == "name" else f", name {direction}")
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        with self._lock:
            if where and limit != 0:  # filtered: the page and its total in one pass over the matches
                got = self.conn.execute(
                    "SELECT name, COUNT(*) OVER () FROM entries" + clause + order + page, args
                ).fetchall()
                names = [r[0] for r in got]
                total = got[0][1] if got else None
            else:
                names, total = None, None
            if total is None:  # unfiltered (a b-tree count), or a page past the end
                total = self.conn.execute("SELECT COUNT(*) FROM entries" + clause, args).fetchone()[0]
            if limit == 0:
                return [], total
            if names is None:
                names = [
                    r[0] for r in self.conn.execute("SELECT name FROM entries" + clause + order + page, args)
                ]
            rows = self._rows_by_name(names)
        return rows, total

    def _rows_by_name(self, names: list[str]) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(names), 500):
            part = names[i : i + 500]
            for r in self.conn.execute(_SELECT + f" WHERE name IN ({', '.join('?' * len(part))})", part):
                row = _row(r)
                out[row["name"]] = row
        return [out[n] for n in names if n in out]

    def get_shards(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for i in range(0, len(urls), 500):
                part = urls[i : i + 500]
                q = f"SELECT url, entry, checksum, size, num_samples, offsets FROM shards WHERE url IN ({', '.join('?' * len(part))})"
                for r in self.conn.execute(q, part):
                    out[r[0]] = dict(zip(("url", "entry", "checksum", "size", "num_samples", "offsets"), r))
        return out

    def get_shard_counts(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        cols = ("url", "checksum", "size", "num_samples", "has_offsets")
        with self._lock:
            for i in range(0, len(urls), 500):
                part = urls[i : i + 500]
                q = (
                    "SELECT url, checksum, size, num_samples, coalesce(length(offsets), 0) > 0 "
                    f"FROM shards WHERE url IN ({', '.join('?' * len(part))})"
                )
                for r in self.conn.execute(q, part):
                    d = dict(zip(cols, r))
                    d["has_offsets"] = bool(d["has_offsets"])
                    out[r[0]] = d
        return out

    # ------------------------------------------------------------------ schemas
    _SCHEMA_COLS = ("ref", "name", "version", "content_cid", "record", "created_at", "published_uri")

    def _schema_row(self, r: tuple) -> dict[str, Any]:
        d = dict(zip(self._SCHEMA_COLS, r))
        d["record"] = json.loads(d["record"])
        return d

    def put_schema(self, row: dict[str, Any]) -> bool:
        with self._write() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO schemas(ref, name, version, content_cid, record, created_at, published_uri) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row["ref"],
                    row["name"],
                    row["version"],
                    row["content_cid"],
                    json.dumps(row["record"]),
                    row.get("created_at"),
                    row.get("published_uri"),
                ),
            )
            return cur.rowcount == 1

    def get_schema(self, ref: str) -> dict[str, Any] | None:
        with self._lock:
            r = self.conn.execute(
                f"SELECT {', '.join(self._SCHEMA_COLS)} FROM schemas WHERE ref = ?", (ref,)
            ).fetchone()
        return self._schema_row(r) if r else None

    def list_schemas(self, name: str | None = None) -> list[dict[str, Any]]:
        q = f"SELECT {', '.join(self._SCHEMA_COLS)} FROM schemas"
        args: tuple = ()
        if name is not None:
            q += " WHERE name = ?"
            args = (name,)
        with self._lock:
            return [self._schema_row(r) for r in self.conn.execute(q + " ORDER BY name, created_at", args)]

    def update_schema(self, ref: str, **fields: Any) -> None:
        allowed = {"published_uri"}
        if set(fields) - allowed:
            raise InvalidArgumentError(f"only {allowed} can change on a stored schema")
        with self._write() as c:
            c.execute("UPDATE schemas SET published_uri = ? WHERE ref = ?", (fields["published_uri"], ref))

    # ------------------------------------------------------------------ state
    def get_state(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            r = self.conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(r[0]) if r else None

    def set_state(self, key: str, value: dict[str, Any] | None) -> None:
        with self._write() as c:
            if value is None:
                c.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                c.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def list_state(self, prefix: str) -> dict[str, dict[str, Any]]:
        esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            rows = self.conn.execute(
                "SELECT key, value FROM state WHERE key LIKE ? ESCAPE '\\'", (esc + "%",)
            ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def generation(self) -> int:
        with self._lock:
            return int(self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self.conn.close()
