"""storage.steps: one command, written once as steps, gives the same result driven on a synchronous
and on an asynchronous connection; a database error reaches the command at the step that caused it;
a Notify is delivered on commit only."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from core import events
from storage.steps import Notify, Sql, SqlMany, Steps, run, run_async


class NameTaken(Exception):
    pass


def add_names(names: list[str]) -> Steps[int]:
    """A small command: create a table once, insert names, refuse a duplicate with its own error."""
    yield Sql("CREATE TABLE IF NOT EXISTS step_names (name text PRIMARY KEY)")
    try:
        yield SqlMany("INSERT INTO step_names (name) VALUES (%s)", [(n,) for n in names])
    except psycopg.errors.UniqueViolation as exc:
        raise NameTaken(str(len(names))) from exc
    yield Notify(events.VitalsChanged("w", (uuid.UUID(int=1),)))
    row = yield Sql("SELECT count(*) FROM step_names", fetch="one")
    rows = yield Sql("SELECT name FROM step_names ORDER BY name", fetch="all")
    assert len(rows) == row[0]  # fetch="all" gives every row, fetch="one" the first
    return int(row[0])


def notify_then_fail() -> Steps[None]:
    yield Notify(events.AlertsChanged("w", (7,)))
    yield Sql("SELECT 1 / 0")


def test_the_same_command_runs_sync_and_async(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction():
        assert run(conn, add_names(["a", "b"])) == 2

    async def go() -> int:
        async with await psycopg.AsyncConnection.connect(database_url) as aconn, aconn.transaction():
            return await run_async(aconn, add_names(["c"]))

    assert asyncio.run(go()) == 3


def test_a_database_error_is_thrown_into_the_command(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            run(conn, add_names(["a"]))
        with pytest.raises(NameTaken), conn.transaction():
            run(conn, add_names(["a"]))

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as aconn, aconn.transaction():
            await run_async(aconn, add_names(["a"]))

    with pytest.raises(NameTaken):
        asyncio.run(go())


def test_notify_is_delivered_on_commit_only(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener, psycopg.connect(database_url) as conn:
        listener.execute(f"LISTEN {events.CHANNEL}")
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            run(conn, notify_then_fail())  # rolled back: its notify must never arrive
        assert list(listener.notifies(timeout=0.3)) == []
        with conn.transaction():
            run(conn, add_names(["y"]))
        heard = [events.parse(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
        assert heard == [events.VitalsChanged("w", (uuid.UUID(int=1),))]
