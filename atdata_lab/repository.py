"""Repositories: an index provider and (optionally) a data store, mounted into an
:class:`~atdata_lab.index.Index` under a name (``Index(repos={"lab": repo})``), as in atdata 0.7."""

from __future__ import annotations

import os
from typing import Any

from .errors import InvalidArgumentError
from .providers.base import IndexProvider
from .stores.base import DataStore
from .stores.local import atdata_home

__all__ = ["Repository", "create_repository", "open_provider"]


def open_provider(
    provider: str | IndexProvider | None = None,
    *,
    path: str | os.PathLike | None = None,
    dsn: str | None = None,
    redis: Any = None,
    url: str | None = None,
    key_prefix: str = "atdata:",
) -> IndexProvider:
    """An index provider: ``"sqlite"`` (``path``, default ``$ATDATA_HOME/index.db``), ``"redis"``
    (a ``redis`` client or a ``url``) or ``"postgres"`` (a ``dsn``); the kind defaults from the
    arguments given."""
    if isinstance(provider, IndexProvider):
        return provider
    kind = provider or ("postgres" if dsn else "redis" if (redis is not None or url) else "sqlite")
    # the backends load when chosen (sqlite_utils costs ~0.2 s of `import atdata_lab`; redis and
    # psycopg are optional)
    if kind == "sqlite":
        from .providers.sqlite import SQLiteProvider

        return SQLiteProvider(path if path is not None else atdata_home() / "index.db")
    if kind == "redis":
        from .providers.redis import RedisProvider

        return RedisProvider(redis=redis, url=url, key_prefix=key_prefix)
    if kind in ("postgres", "postgresql"):
        if not dsn:
            raise InvalidArgumentError(
                "the PostgreSQL index needs a DSN: provider='postgres', "
                "dsn='postgresql://user:password@host:5432/dbname'"
            )
        from .providers.postgres import PostgresProvider

        return PostgresProvider(dsn)
    raise InvalidArgumentError(
        f"unknown index provider {provider!r}: use 'sqlite', 'redis', 'postgres' or an IndexProvider"
    )


class Repository:
    """An index provider paired with the data store its new shards go to (``None``: the
    mounting index's).

    Args:
        provider: An :class:`IndexProvider` (see :func:`create_repository` to make one by name).
        data_store: Where shards written to this repository go.
    """

    provider: IndexProvider
    data_store: DataStore | None

    def __init__(self, provider: IndexProvider, data_store: DataStore | None = None) -> None:
        if not isinstance(provider, IndexProvider):
            raise InvalidArgumentError(
                f"Repository needs an IndexProvider, not {provider!r}: use create_repository('sqlite', path=...)"
            )
        self.provider = provider
        self.data_store = data_store

    def __repr__(self) -> str:
        return f"Repository({self.provider!r}, data_store={self.data_store!r})"


def create_repository(
    provider: str = "sqlite",
    *,
    path: str | os.PathLike | None = None,
    dsn: str | None = None,
    redis: Any = None,
    data_store: DataStore | None = None,
    **kwargs: Any,
) -> Repository:
    """A :class:`Repository` on a provider chosen by name: ``"sqlite"`` (``path``), ``"redis"``
    (``redis=`` client, or ``url=``, ``key_prefix=``) or ``"postgres"`` (``dsn=``)."""
    unknown = set(kwargs) - {"url", "key_prefix"}
    if unknown:
        raise InvalidArgumentError(
            f"create_repository got unknown options {sorted(unknown)}: it takes path=, dsn=, redis=, "
            "url=, key_prefix= and data_store="
        )
    return Repository(open_provider(provider, path=path, dsn=dsn, redis=redis, **kwargs), data_store)
