"""Database work written once, run on a synchronous or an asynchronous connection.

psycopg writes its protocol once as generators and drives them sync or async (psycopg/generators.py).
Hemma's care commands and alert store do the same with their SQL: a command is a generator that
yields `Sql` (or `Notify`) steps and receives each step's rows back, and returns its result.
`run` drives it on a `psycopg.Connection` (CLI, ingest, escalator), `run_async` on a
`psycopg.AsyncConnection` (dashboard). So the validation, the permission check and the writes of a
decision exist once, whichever entry point calls them.

A database error is thrown back into the generator at the step that caused it, so a command can
turn, say, a unique violation into its own typed refusal. Neither driver opens a transaction: the
caller owns it (`with conn.transaction(): run(conn, command)`), so one transaction may hold
several commands and the NOTIFY they cause is delivered only on commit.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

import psycopg
from psycopg import sql

from core import events

__all__ = ["Notify", "Sql", "Steps", "run", "run_async"]

T = TypeVar("T")
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement. The generator receives None, one row (a tuple or None) or all rows (a list)."""

    query: str | sql.Composed
    params: Params = None
    fetch: Literal["none", "one", "all"] = "none"


@dataclass(frozen=True, slots=True)
class SqlMany:
    """One statement executed for each parameter set (executemany); the generator receives None."""

    query: str | sql.Composed
    params_seq: Sequence[Sequence[Any] | Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the dashboards (delivered when the surrounding transaction commits)."""

    event: events.Event


Step: TypeAlias = Sql | SqlMany | Notify
Steps: TypeAlias = Generator[Step, Any, T]

_NOTIFY = "SELECT pg_notify(%s, %s)"


def run(conn: psycopg.Connection[Any], steps: Steps[T]) -> T:
    """Drive `steps` on a synchronous connection; returns the command's result."""
    reply: Any = None
    failure: BaseException | None = None
    while True:
        try:
            step = steps.throw(failure) if failure is not None else steps.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply, failure = None, None
        try:
            reply = _execute(conn, step)
        except psycopg.Error as exc:
            failure = exc


async def run_async(conn: psycopg.AsyncConnection[Any], steps: Steps[T]) -> T:
    """Drive `steps` on an asynchronous connection; returns the command's result."""
    reply: Any = None
    failure: BaseException | None = None
    while True:
        try:
            step = steps.throw(failure) if failure is not None else steps.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply, failure = None, None
        try:
            reply = await _execute_async(conn, step)
        except psycopg.Error as exc:
            failure = exc


def _execute(conn: psycopg.Connection[Any], step: Step) -> Any:
    with conn.cursor() as cur:
        match step:
            case Sql(query, params, fetch):
                cur.execute(query, params)
                return cur.fetchone() if fetch == "one" else cur.fetchall() if fetch == "all" else None
            case SqlMany(query, params_seq):
                if params_seq:
                    cur.executemany(query, params_seq)
                return None
            case Notify(event):
                for part in events.split([event]):
                    cur.execute(_NOTIFY, (events.CHANNEL, events.encode(part)))
                return None
    raise TypeError(f"not a step: {type(step).__name__}")


async def _execute_async(conn: psycopg.AsyncConnection[Any], step: Step) -> Any:
    async with conn.cursor() as cur:
        match step:
            case Sql(query, params, fetch):
                await cur.execute(query, params)
                if fetch == "one":
                    return await cur.fetchone()
                return await cur.fetchall() if fetch == "all" else None
            case SqlMany(query, params_seq):
                if params_seq:
                    await cur.executemany(query, params_seq)
                return None
            case Notify(event):
                for part in events.split([event]):
                    await cur.execute(_NOTIFY, (events.CHANNEL, events.encode(part)))
                return None
    raise TypeError(f"not a step: {type(step).__name__}")
