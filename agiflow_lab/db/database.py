"""One async connection pool per process.

``check_connection`` on checkout means a Postgres restart costs the caller one retry at most rather
than a stream of errors from dead pooled connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agiflow_lab.errors import Unavailable

Conn = psycopg.AsyncConnection[dict[str, Any]]


class Database:
    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            name="agiflow",
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise Unavailable("the database is unreachable", {"reason": str(exc)}) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A connection inside one transaction: everything commits together or not at all."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        """A dedicated connection outside the pool (LISTEN, advisory locks held for a while)."""
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, row_factory=dict_row)
