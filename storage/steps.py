"""Database work written once, run on a synchronous or an asynchronous connection.

psycopg writes its protocol once as generators and drives them sync or async (psycopg/generators.py).
Hemma's care commands and alert store do the same with their SQL: a command is a generator that
yields `Sql` (or `Notify`) steps and receives each step's rows back, and returns its result.
`run` drives it on a `psycopg.Connection` (CLI, ingest, escalator), `run_async` on a
`psycopg.AsyncConnection` (dashboard). So the validation, the permission check and the writes of a
decision exist once, whichever entry point calls them.

A database error is thrown back into the generator at the step that caused it, so a command can
turn, say, a unique violation into its own typed refusal. The transaction is aborted by then: a
command may translate the error, never carry on with more statements. Neither driver opens a transaction: the
caller owns it (`with conn.transaction(): run(conn, command)`), so one transaction may hold
several commands and the NOTIFY they cause is delivered only on commit.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar, cast

import psycopg
from psycopg import sql

from core import events

__all__ = ["Notify", "Sql", "Steps", "run", "run_async"]

T = TypeVar("T")
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None
RowParams: TypeAlias = Sequence[Any] | Mapping[str, Any]


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
    params_seq: Sequence[RowParams]


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
    failure: psycopg.Error | None = None
    while True:
        done, value = _advance(steps, reply, failure)
        if done:
            return cast(T, value)
        reply, failure = None, None
        try:
            with conn.cursor() as cur:
                for query, params, many, fetch in _statements(value):
                    if many:
                        cur.executemany(query, params)
                    else:
                        cur.execute(query, params)
                    reply = None if fetch is None else cur.fetchone() if fetch == "one" else cur.fetchall()
        except psycopg.Error as exc:
            failure = exc


async def run_async(conn: psycopg.AsyncConnection[Any], steps: Steps[T]) -> T:
    """Drive `steps` on an asynchronous connection; returns the command's result."""
    reply: Any = None
    failure: psycopg.Error | None = None
    while True:
        done, value = _advance(steps, reply, failure)
        if done:
            return cast(T, value)
        reply, failure = None, None
        try:
            async with conn.cursor() as cur:
                for query, params, many, fetch in _statements(value):
                    if many:
                        await cur.executemany(query, params)
                    else:
                        await cur.execute(query, params)
                    if fetch is not None:
                        reply = await cur.fetchone() if fetch == "one" else await cur.fetchall()
        except psycopg.Error as exc:
            failure = exc


def _advance(steps: Steps[Any], reply: Any, failure: psycopg.Error | None) -> tuple[bool, Any]:
    """(False, the next step) or (True, the command's result); a failure is thrown into the command."""
    try:
        return False, steps.throw(failure) if failure is not None else steps.send(reply)
    except StopIteration as done:
        return True, done.value


def _statements(step: Step) -> list[tuple[str | sql.Composed, Any, bool, str | None]]:
    """(query, parameters, executemany?, what to fetch after it or None) for each statement of a step."""
    match step:
        case Sql(query, params, fetch):
            return [(query, params, False, None if fetch == "none" else fetch)]
        case SqlMany(query, params_seq):
            return [(query, params_seq, True, None)] if params_seq else []
        case Notify(event):
            return [(_NOTIFY, (events.CHANNEL, events.encode(e)), False, None) for e in events.split([event])]
    raise TypeError(f"not a step: {type(step).__name__}")
