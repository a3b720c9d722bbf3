"""The Redis index provider: one index shared by a team, on a real ``redis-server``.

Layout under a key prefix ``P`` (default ``atdata:``), so several indexes can share one Redis:

* ``P:e:{name}``: the entry row (msgpack); ``P:url:{url}``: names of the entries using a shard URL;
* ``P:cid:{cid}``, ``P:tag:{tag}``, ``P:sref:{schema_ref}``, ``P:sname:{schema name}``: sets of entry
  names (secondary keys: lookups by name, CID, tag or schema are O(1), never a SCAN);
* ``P:published``: names of published entries; ``P:all``: every name;
* ``P:z:{column}``: one sorted set per sortable column (paging is ``ZRANGE``; filters are
  ``SINTERSTORE`` + ``ZINTERSTORE`` on the server); ``P:text``: name -> searchable text;
* ``P:sh:{url}``: shard rows; ``P:s:{ref}``, ``P:sn:{name}``, ``P:schemas``: schemas;
  ``P:st:{key}`` + ``P:stkeys``: small state records; ``P:gen``: the change counter.

Every multi-key write runs in one ``MULTI/EXEC`` transaction (with ``WATCH`` where it reads first).
Search is one Lua script: one round trip, whatever the filters.
"""

from __future__ import annotations

import bisect
import json
import re
import uuid
from datetime import datetime
from typing import Any

import msgpack

from ..errors import EntryConflictError, InvalidArgumentError
from .base import ENTRY_KEYS, SORT_COLUMNS, IndexProvider, IndexUnavailableError, search_text

__all__ = ["RedisProvider", "IndexUnavailableError"]


_SEARCH = r"""
-- KEYS: 1 sort key, 2 tmp key, 3 (unused), 4 published set, 5 all set, 6 sort-value hash, 7.. filter sets
-- ARGV: 1 desc(0/1), 2 offset, 3 limit(-1 = all), 4 text ('' = none), 5 published ('', '1', '0'),
--       6 lex (1: the sort key is a "value\0name" lex set, exact byte order), 7.. text matches
local sortkey, tmp, pubset, allset, valhash = KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6]
local desc, offset, limit, text, pub = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local lex = ARGV[6] == '1'
local filters = {}
for i = 7, #KEYS do filters[#filters + 1] = KEYS[i] end

local function name_of(member)
  local at = string.find(member, '\0', 1, true)
  return string.sub(member, at + 1)
end

if #filters == 0 and text == '' and pub == '' then
  local total = redis.call('ZCARD', sortkey)
  if limit == 0 then return {total} end
  local out
  if lex then
    local count = (limit < 0) and -1 or limit
    if desc then out = redis.call('ZRANGE', sortkey, '+', '-', 'BYLEX', 'REV', 'LIMIT', offset, count)
    else out = redis.call('ZRANGE', sortkey, '-', '+', 'BYLEX', 'LIMIT', offset, count) end
    for i = 1, #out do out[i] = name_of(out[i]) end
  else
    local stop = (limit < 0) and -1 or (offset + limit - 1)
    if desc then out = redis.call('ZRANGE', sortkey, offset, stop, 'REV') else out = redis.call('ZRANGE', sortkey, offset, stop) end
  end
  table.insert(out, 1, total)
  return out
end
local sets = {}
for _, k in ipairs(filters) do sets[#sets + 1] = k end
if pub == '1' then sets[#sets + 1] = pubset end
if text ~= '' then
  -- text matches were found by the client (ARGV[7..]): filter, sort and page them here
  if #ARGV < 7 then return {0} end
  for i = 7, #ARGV, 4000 do redis.call('SADD', tmp, unpack(ARGV, i, math.min(i + 3999, #ARGV))) end
  if #sets > 0 then
    sets[#sets + 1] = tmp
    redis.call('SINTERSTORE', tmp, unpack(sets))
  end
else
  if #sets == 0 then sets[1] = allset end
  redis.call('SINTERSTORE', tmp, unpack(sets))
end
if pub == '0' then redis.call('SDIFFSTORE', tmp, tmp, pubset) end
local out = {}
local total
if lex then
  -- exact order of the (narrowed) candidates: their sort values, sorted here
  local names = redis.call('SMEMBERS', tmp)
  redis.call('DEL', tmp)
  total = #names
  local rows = {}
  for i = 1, #names, 4000 do
    local part = {unpack(names, i, math.min(i + 3999, #names))}
    local vals = redis.call('HMGET', valhash, unpack(part))
    for j = 1, #part do rows[#rows + 1] = {vals[j] or '', part[j]} end
  end
  if desc then
    table.sort(rows, function(a, b) if a[1] ~= b[1] then return a[1] > b[1] end return a[2] > b[2] end)
  else
    table.sort(rows, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
  end
  if limit ~= 0 then
    local stop = (limit < 0) and #rows or math.min(#rows, offset + limit)
    for i = offset + 1, stop do out[#out + 1] = rows[i][2] end
  end
else
  redis.call('ZINTERSTORE', tmp, 2, sortkey, tmp, 'WEIGHTS', 1, 0)
  total = redis.call('ZCARD', tmp)
  if limit ~= 0 then
    local stop = (limit < 0) and -1 or (offset + limit - 1)
    if desc then out = redis.call('ZRANGE', tmp, offset, stop, 'REV') else out = redis.call('ZRANGE', tmp, offset, stop) end
  end
  redis.call('DEL', tmp)
end
table.insert(out, 1, total)
return out
"""


# String columns sort exactly (byte order, like SQLite) through "value\0name" lex sets.
STRING_COLUMNS = ("schema_ref", "license", "published_uri", "tags")


def _score(column: str, value: Any) -> float:
    """Sort score of a numeric or time column value."""
    if value is None:
        return -1.0
    if column == "created_at":
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return float(value)


def _sort_text(column: str, row: dict[str, Any]) -> str:
    """The value a string column sorts by ("" for none; tags by their first tag)."""
    value = row.get(column)
    if column == "tags":
        value = value[0] if value else None
    return "" if value is None else str(value).replace("\x00", " ")


class RedisProvider(IndexProvider):
    """An index in Redis.

    Args:
        redis: A ``redis.Redis`` client (bytes responses: do not set ``decode_responses``).
        url: A ``redis://host:port/db`` URL (used when ``redis`` is not given).
        key_prefix: Prefix of every key, so several indexes can share one Redis.
    """

    kind = "redis"

    def __init__(self, *, redis: Any = None, url: str | None = None, key_prefix: str = "atdata:") -> None:
        try:
            import redis as redis_mod
        except ImportError:
            raise ImportError("the Redis index needs redis-py: pip install 'atdata-lab[redis]'") from None
        self._redis_mod = redis_mod
        if redis is None:
            redis = redis_mod.Redis.from_url(url or "redis://127.0.0.1:6379/0")
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise InvalidArgumentError(
                "pass a Redis client without decode_responses=True (the index stores bytes)"
            )
        self.r = redis
        kw = redis.connection_pool.connection_kwargs
        self.where = url or f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"
        self.p = key_prefix.rstrip(":") + ":"
        self._search = None
        self._text_cache: tuple | None = None
        self._call(self.r.ping)

    def __repr__(self) -> str:
        return f"RedisProvider({self.where!r}, key_prefix={self.p!r})"

    # ------------------------------------------------------------------ plumbing
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (self._redis_mod.ConnectionError, self._redis_mod.TimeoutError) as e:
            raise IndexUnavailableError(
                f"cannot reach the Redis index at {self.where} ({e}); is redis-server running? "
                "Start it (redis-server --port PORT) or use the SQLite index (Index(path=...))"
            ) from None

    def _k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    def _transact(self, watch: list[str], body: Any) -> Any:
        """Run ``body(pipe, reads)`` in WATCH/MULTI/EXEC, retrying when a watched key changes."""

        def attempt() -> Any:
            with self.r.pipeline() as pipe:
                while True:
                    try:
                        if watch:
                            pipe.watch(*watch)
                        wrote = body(pipe)
                        if wrote is False:  # nothing to change: no transaction, no new generation
                            pipe.reset()
                            return wrote
                        pipe.incr(self._k("gen"))
                        pipe.execute()
                        return wrote
                    except self._redis_mod.WatchError:
                        continue

        return self._call(attempt)

    @staticmethod
    def _pack(row: dict[str, Any]) -> bytes:
        return msgpack.packb(row, use_bin_type=True)

    @staticmethod
    def _unpack(raw: bytes | None) -> Any:
        return msgpack.unpackb(raw, raw=False) if raw is not None else None

    def _index_keys(self, row: dict[str, Any]) -> list[str]:
        keys = [
            self._k("cid", row["cid"]),
            self._k("sref", row["schema_ref"]),
            self._k("sname", row["schema_ref"].rsplit("/", 1)[-1].split("@")[0]),
        ]
        keys += [self._k("tag", t) for t in row.get("tags") or []]
        keys += [self._k("url", u) for u in row.get("data_urls") or []]
        return keys

    def _add_indexes(self, pipe: Any, row: dict[str, Any]) -> None:
        name = row["name"]
        for key in self._index_keys(row):
            pipe.sadd(key, name)
        pipe.sadd(self._k("all"), name)
        if row.get("published_uri"):
            pipe.sadd(self._k("published"), name)
        for col in SORT_COLUMNS:
            if col in STRING_COLUMNS:
                value = _sort_text(col, row)
                pipe.zadd(self._k("lx", col), {f"{value}\x00{name}": 0})
                pipe.hset(self._k("sv", col), name, value)
            else:
                pipe.zadd(self._k("z", col), {name: 0.0 if col == "name" else _score(col, row.get(col))})
        pipe.hset(self._k("text"), name, search_text(row))

    def _remove_indexes(self, pipe: Any, row: dict[str, Any]) -> None:
        name = row["name"]
        for key in self._index_keys(row):
            pipe.srem(key, name)
        pipe.srem(self._k("all"), name)
        pipe.srem(self._k("published"), name)
        for col in SORT_COLUMNS:
            if col in STRING_COLUMNS:
                pipe.zrem(self._k("lx", col), f"{_sort_text(col, row)}\x00{name}")
                pipe.hdel(self._k("sv", col), name)
            else:
                pipe.zrem(self._k("z", col), name)
        pipe.hdel(self._k("text"), name)

    def _shard_writes(self, pipe: Any, shards: list[dict[str, Any]]) -> None:
        for s in shards:
            pipe.set(
                self._k("sh", s["url"]),
                self._pack(
                    {k: s.get(k) for k in ("url", "entry", "checksum", "size", "num_samples", "offsets")}
                ),
            )

    # ------------------------------------------------------------------ entries
    def put_entry(self, row: dict[str, Any], shards: list[dict[str, Any]], *, replace: bool = False) -> None:
        name = row["name"]
        ekey = self._k("e", name)
        clean = {k: row.get(k) for k in ENTRY_KEYS}

        def body(pipe: Any) -> bool:
            old = self._unpack(pipe.get(ekey))
            if old is not None and not replace:
                pipe.reset()
                raise EntryConflictError(
                    f"an entry named {name!r} already exists; pass overwrite=True to replace it"
                )
            orphans = self._orphaned(pipe, old, clean) if old is not None else []
            pipe.multi()
            if old is not None:
                self._remove_indexes(pipe, old)
            for u in orphans:
                pipe.delete(self._k("sh", u))
            pipe.set(ekey, self._pack(clean))
            self._add_indexes(pipe, clean)
            self._shard_writes(pipe, shards)
            return True

        self._transact([ekey], body)

    def _orphaned(self, pipe: Any, old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
        """URLs of ``old`` that no entry but ``old`` (or its replacement ``new``) uses: their shard rows go."""
        keep = set(new.get("data_urls") or []) if new is not None else set()
        out = []
        for u in old.get("data_urls") or []:
            if u in keep:
                continue
            users = {n.decode() for n in pipe.smembers(self._k("url", u))}
            if users <= {old["name"]}:
                out.append(u)
        return out

    def put_shards(self, shards: list[dict[str, Any]]) -> None:
        def body(pipe: Any) -> None:
            pipe.multi()
            self._shard_writes(pipe, shards)

        self._transact([], body)

    def get_entry(self, name: str) -> dict[str, Any] | None:
        return self._unpack(self._call(self.r.get, self._k("e", name)))

    def get_entry_by_cid(self, cid: str) -> dict[str, Any] | None:
        names = self._call(self.r.smembers, self._k("cid", cid))
        rows = [r for r in (self.get_entry(n.decode()) for n in names) if r is not None]
        return max(rows, key=lambda r: r.get("created_at") or "") if rows else None

    def update_entry(self, name: str, **fields: Any) -> None:
        bad = set(fields) - set(ENTRY_KEYS)
        if bad:
            raise InvalidArgumentError(f"unknown entry fields {sorted(bad)}")
        ekey = self._k("e", name)

        def body(pipe: Any) -> bool:
            old = self._unpack(pipe.get(ekey))
            if old is None:
                pipe.reset()
                return False
            new = {**old, **fields}
            orphans = self._orphaned(pipe, old, new) if "data_urls" in fields else []
            pipe.multi()
            self._remove_indexes(pipe, old)
            for u in orphans:
                pipe.delete(self._k("sh", u))
            pipe.set(ekey, self._pack(new))
            self._add_indexes(pipe, new)
            return True

        self._transact([ekey], body)

    def delete_entry(self, name: str) -> dict[str, Any] | None:
        ekey = self._k("e", name)
        removed: list[dict[str, Any]] = []

        def body(pipe: Any) -> bool:
            old = self._unpack(pipe.get(ekey))
            if old is None:
                pipe.reset()
                return False
            orphans = self._orphaned(pipe, old, None)
            pipe.multi()
            removed.append(old)
            self._remove_indexes(pipe, old)
            for u in orphans:
                pipe.delete(self._k("sh", u))
            pipe.delete(ekey)
            return True

        self._transact([ekey], body)
        return removed[0] if removed else None

    def urls_in_use(self, urls: list[str], *, exclude: str | None = None) -> set[str]:
        if not urls:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for u in urls:
            pipe.smembers(self._k("url", u))
        users = self._call(pipe.execute)
        return {
            u
            for u, names in zip(urls, users)
            if {n.decode() for n in names} - ({exclude} if exclude else set())
        }

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
        # Ties come back in name order, reversed when descending (as in SQLite).
        if self._search is None:
            self._search = self.r.register_script(_SEARCH)
        filters = [self._k("tag", t) for t in tags or []]
        if schema:
            filters.append(
                self._k("sref", schema) if ("@" in schema or "://" in schema) else self._k("sname", schema)
            )
        lex = sort in STRING_COLUMNS
        keys = [
            self._k("lx", sort) if lex else self._k("z", sort),
            self._k("tmp", uuid.uuid4().hex),
            self._k("text"),
            self._k("published"),
            self._k("all"),
            self._k("sv", sort),
            *filters,
        ]
        args = [
            "1" if descending else "0",
            int(offset),
            -1 if limit is None else int(limit),
            (text or "").lower(),
            "" if published is None else ("1" if published else "0"),
            "1" if lex else "0",
        ]
        if text:
            hits = self._text_matches(text.lower())
            if not hits:
                return [], 0
            args += hits
        out = self._call(self._search, keys=keys, args=args)
        total, names = int(out[0]), [n.decode() for n in out[1:]]
        return self._rows(names), total

    def _text_matches(self, needle: str) -> list[str]:
        """Names whose search text contains ``needle``.

        Redis has no substring index, so the texts are cached here and refreshed only when the
        index's generation changes (any write, by any process): a keystroke costs one GET and a
        scan of one string, not a transfer of every text.
        """
        gen = self.generation()
        cache = self._text_cache
        if cache is None or cache[0] != gen:
            raw = self._call(self.r.hgetall, self._k("text"))
            names = [k.decode() for k in raw]
            texts = [v.decode().replace("\x00", " ") for v in raw.values()]
            starts, pos = [], 0
            for t in texts:
                starts.append(pos)
                pos += len(t) + 1
            cache = self._text_cache = (gen, names, "\x00".join(texts), starts)
        _, names, blob, starts = cache
        hits: dict[str, None] = {}
        for m in re.finditer(re.escape(needle), blob):
            hits[names[bisect.bisect_right(starts, m.start()) - 1]] = None
        return list(hits)

    def _rows(self, names: list[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        raws = self._call(self.r.mget, [self._k("e", n) for n in names])
        return [self._unpack(r) for r in raws if r is not None]

    def get_shards(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        if not urls:
            return {}
        raws = self._call(self.r.mget, [self._k("sh", u) for u in urls])
        return {u: self._unpack(r) for u, r in zip(urls, raws) if r is not None}

    def get_shard_counts(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        # a shard row is one packed value: fetched in chunks, its offsets dropped as each is read
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(urls), 1000):
            part = urls[i : i + 1000]
            for u, raw in zip(part, self._call(self.r.mget, [self._k("sh", x) for x in part])):
                r = self._unpack(raw)
                if r is not None:
                    out[u] = {
                        "url": u,
                        "checksum": r.get("checksum"),
                        "size": r.get("size"),
                        "num_samples": r.get("num_samples"),
                        "has_offsets": bool(r.get("offsets")),
                    }
        return out

    # ------------------------------------------------------------------ schemas
    def put_schema(self, row: dict[str, Any]) -> bool:
        key = self._k("s", row["ref"])
        stored: list[bool] = []

        def body(pipe: Any) -> bool:
            if pipe.exists(key):
                stored.append(False)
                return False
            pipe.multi()
            pipe.set(key, self._pack(row))
            pipe.sadd(self._k("sn", row["name"]), row["ref"])
            pipe.sadd(self._k("schemas"), row["ref"])
            stored.append(True)
            return True

        self._transact([key], body)
        return stored[0]

    def get_schema(self, ref: str) -> dict[str, Any] | None:
        return self._unpack(self._call(self.r.get, self._k("s", ref)))

    def list_schemas(self, name: str | None = None) -> list[dict[str, Any]]:
        refs = self._call(self.r.smembers, self._k("sn", name) if name is not None else self._k("schemas"))
        if not refs:
            return []
        raws = self._call(self.r.mget, [self._k("s", r.decode()) for r in refs])
        rows = [self._unpack(r) for r in raws if r is not None]
        return sorted(rows, key=lambda r: (r["name"], r.get("created_at") or ""))

    def update_schema(self, ref: str, **fields: Any) -> None:
        if set(fields) - {"published_uri"}:
            raise InvalidArgumentError("only published_uri can change on a stored schema")
        key = self._k("s", ref)

        def body(pipe: Any) -> None:
            row = self._unpack(pipe.get(key))
            pipe.multi()
            if row is not None:
                row.update(fields)
                pipe.set(key, self._pack(row))

        self._transact([key], body)

    # ------------------------------------------------------------------ state
    def get_state(self, key: str) -> dict[str, Any] | None:
        raw = self._call(self.r.get, self._k("st", key))
        return json.loads(raw) if raw is not None else None

    def set_state(self, key: str, value: dict[str, Any] | None) -> None:
        def body(pipe: Any) -> None:
            pipe.multi()
            if value is None:
                pipe.delete(self._k("st", key))
                pipe.zrem(self._k("stkeys"), key)
            else:
                pipe.set(self._k("st", key), json.dumps(value))
                pipe.zadd(self._k("stkeys"), {key: 0})

        self._transact([], body)

    def list_state(self, prefix: str) -> dict[str, dict[str, Any]]:
        keys = self._call(
            self.r.zrangebylex, self._k("stkeys"), b"[" + prefix.encode(), b"[" + prefix.encode() + b"\xff"
        )
        if not keys:
            return {}
        raws = self._call(self.r.mget, [self._k("st", k.decode()) for k in keys])
        return {k.decode(): json.loads(v) for k, v in zip(keys, raws) if v is not None}

    def generation(self) -> int:
        return int(self._call(self.r.get, self._k("gen")) or 0)

    def close(self) -> None:
        self.r.close()
