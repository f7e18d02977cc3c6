"""Seal the access log day by day and check the seals (issue 12; migration 0022): `hemma accesslog
seal` and `hemma accesslog check`. The chain itself (what is hashed, how) is care.access_log_chain's.

Sealing takes SEAL_LOCK exclusive. Every insert into access_log holds it shared until its transaction
ends (migration 0022's trigger), so the sealer starts only once every transaction that had written to
the log has ended, and a row dated in a day sealed meanwhile is refused at insert. Two sealers at once
take turns; the second finds the days sealed. A day is complete SEAL_GRACE after its UTC midnight.

The application's database role runs both (deploy/README.md, "Access log seals"): it may insert seals
and check results and read the log, never change them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import sql

from care.access_log_chain import DayChain, Difference, Problem, chain_day, compare

SEAL_LOCK = 4849574102  # the same number as in migration 0022's trigger
SEAL_GRACE = timedelta(minutes=10)
LOCK_TIMEOUT = "60s"
# `seal` looks this far back for rows added to days it sealed before (a full check is `check`).
RECENT_DAYS = 7


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _canonical_session(conn: psycopg.Connection[Any]) -> None:
    """The text output the chain is defined over (care.access_log_chain), for this transaction."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
    conn.execute("SET LOCAL bytea_output = 'hex'")


def table_columns(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'access_log'::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _day_rows(
    conn: psycopg.Connection[Any], day: date, columns: list[str]
) -> Iterator[tuple[int, list[str | None]]]:
    """The day's rows in id order, streamed from a server-side cursor (a big region's day is millions
    of ward-overview rows: never all in memory). Runs inside the caller's transaction."""
    start, end = day_bounds(day)
    texts = sql.SQL(", ").join(sql.SQL("l.{}::text").format(sql.Identifier(c)) for c in columns)
    query = sql.SQL("SELECT l.id, {} FROM access_log l WHERE l.at >= %s AND l.at < %s ORDER BY l.id").format(
        texts
    )
    with conn.cursor(name=f"access_log_day_{day:%Y%m%d}") as cur:
        cur.itersize = 10_000
        cur.execute(query, (start, end))
        for r in cur:
            yield int(r[0]), list(r[1:])


@dataclass(frozen=True, slots=True)
class SealReport:
    sealed: tuple[date, ...]  # the days sealed by this run, oldest first
    added: tuple[Difference, ...]  # rows found in recently sealed days that their seal lacks
    through: date | None  # the last sealed day after this run


def seal(conn: psycopg.Connection[Any], *, now: datetime | None = None) -> SealReport:
    """Seal every complete, unsealed day (idempotent). `conn` is in autocommit mode."""
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SEAL_LOCK,))
        _canonical_session(conn)
        horizon_row = conn.execute(
            "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('access_log', 'id')), 0), now()"
        ).fetchone()
        assert horizon_row is not None
        horizon, db_now = int(horizon_row[0]), horizon_row[1]
        last_complete = ((now or db_now) - SEAL_GRACE).astimezone(UTC).date() - timedelta(days=1)
        previous = conn.execute(
            "SELECT day, day_hash FROM access_log_seals ORDER BY day DESC LIMIT 1"
        ).fetchone()
        added = tuple(_added_to_recent(conn, previous[0])) if previous else ()
        if previous is None:
            first_row = conn.execute("SELECT min(at) FROM access_log").fetchone()
            if first_row is None or first_row[0] is None:
                return SealReport((), added, None)
            first = first_row[0].astimezone(UTC).date()
            previous_day, previous_hash = None, None
        else:
            previous_day, previous_hash = previous[0], bytes(previous[1])
            first = previous_day + timedelta(days=1)
        columns = table_columns(conn)
        sealed = []
        for day in _days(first, last_complete):
            chain = chain_day(day, previous_hash, _day_rows(conn, day, columns))
            conn.execute(
                "INSERT INTO access_log_seals (day, previous_day, row_count, row_ids, row_digests, columns,"
                " id_horizon, day_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (day, previous_day, len(chain.row_ids), list(chain.row_ids), chain.row_digests, columns,
                 horizon, chain.day_hash),
            )  # fmt: skip
            sealed.append(day)
            previous_day, previous_hash = day, chain.day_hash
        return SealReport(tuple(sealed), added, previous_day)


def _added_to_recent(conn: psycopg.Connection[Any], last_sealed: date) -> Iterator[Difference]:
    """Rows dated in the last RECENT_DAYS sealed days that their seal does not cover."""
    rows = conn.execute(
        "SELECT s.day, l.id, s.id_horizon FROM access_log_seals s JOIN access_log l"
        " ON l.at >= s.day::timestamp AT TIME ZONE 'UTC' AND l.at < (s.day + 1)::timestamp AT TIME ZONE 'UTC'"
        " WHERE s.day > %s AND l.id <> ALL (s.row_ids) ORDER BY s.day, l.id",
        (last_sealed - timedelta(days=RECENT_DAYS),),
    ).fetchall()
    for day, row_id, horizon in rows:
        yield Difference(day, Problem.LATE if row_id <= horizon else Problem.INSERTED, int(row_id))


@dataclass(frozen=True, slots=True)
class CheckReport:
    from_day: date | None
    to_day: date | None
    days: int  # sealed days checked
    intact_through: date | None  # the last day checked that verified (with every day before it in range)
    difference: Difference | None = None
    checked_at: datetime | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.difference is None


@dataclass(frozen=True, slots=True)
class _Seal:
    day: date
    previous_day: date | None
    chain: DayChain
    columns: list[str]
    id_horizon: int


def _seals(conn: psycopg.Connection[Any], from_day: date | None, to_day: date | None) -> list[_Seal]:
    rows = conn.execute(
        "SELECT day, previous_day, row_ids, row_digests, columns, id_horizon, day_hash FROM access_log_seals"
        " WHERE (%(from)s::date IS NULL OR day >= %(from)s::date - 1)"
        " AND (%(to)s::date IS NULL OR day <= %(to)s::date) ORDER BY day",
        {"from": from_day, "to": to_day},
    ).fetchall()
    return [
        _Seal(r[0], r[1], DayChain(r[0], tuple(r[2]), bytes(r[3]), bytes(r[6])), list(r[4]), int(r[5]))
        for r in rows
    ]


def check(
    conn: psycopg.Connection[Any], *, from_day: date | None = None, to_day: date | None = None
) -> CheckReport:
    """Recompute the sealed days from `from_day` (default: the first seal, or after a purge the first
    sealed day with rows left) to `to_day` (default: the last) and compare them with their seals; the
    first difference stops the check. Records the outcome in access_log_checks. The day before
    `from_day` is trusted as sealed (its hash starts the chain); from the genesis, rows dated before
    it count too.
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        _canonical_session(conn)
        if from_day is None:
            from_day = _after_purge(conn)
        report = _check(conn, from_day, to_day)
    row = conn.execute(
        "INSERT INTO access_log_checks (from_day, to_day, intact_through, problem_day, problem_row, problem)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING checked_at",
        (report.from_day, report.to_day, report.intact_through,
         report.difference.day if report.difference else None,
         report.difference.row_id if report.difference else None,
         report.difference.problem.value if report.difference else None),
    ).fetchone()  # fmt: skip
    return CheckReport(report.from_day, report.to_day, report.days, report.intact_through, report.difference,
                       row[0] if row else None)  # fmt: skip


def _after_purge(conn: psycopg.Connection[Any]) -> date | None:
    """The first sealed day that still has rows, when the days sealed before it have none left: a
    lawful purge after the retention period (deploy/postgres/purge-access-log.sql, at a UTC midnight)
    removes whole days, and their seals stay. None when nothing was purged (check from the genesis)."""
    row = conn.execute(
        "SELECT (SELECT min(day) FROM access_log_seals),"
        " (SELECT (min(at) AT TIME ZONE 'UTC')::date FROM access_log)"
    ).fetchone()
    if row is None or row[0] is None or row[1] is None or row[1] <= row[0]:
        return None
    last = conn.execute("SELECT max(day) FROM access_log_seals").fetchone()
    first_with_rows: date = row[1]
    return min(first_with_rows, last[0]) if last and last[0] else first_with_rows


def _check(conn: psycopg.Connection[Any], from_day: date | None, to_day: date | None) -> CheckReport:
    seals = _seals(conn, from_day, to_day)
    previous: _Seal | None = None
    if from_day is not None and seals and seals[0].day < from_day:
        previous = seals.pop(0)
    if not seals:
        return CheckReport(from_day, to_day, 0, None)
    first = seals[0]
    if previous is None and from_day is not None and first.previous_day is not None:
        return _broken(
            from_day,
            to_day,
            0,
            None,
            Difference(first.day, Problem.SEAL, None, "the day before is not sealed"),
        )
    if previous is None and first.previous_day is None:
        start, _ = day_bounds(first.day)
        early = conn.execute("SELECT min(id) FROM access_log WHERE at < %s", (start,)).fetchone()
        if early is not None and early[0] is not None:
            difference = Difference(first.day - timedelta(days=1), Problem.INSERTED, int(early[0]),
                                    "dated before the first seal")  # fmt: skip
            return _broken(from_day, to_day, 0, None, difference)
    intact: date | None = None
    for count, seal_ in enumerate(seals):
        expected_previous = previous.day if previous else None
        if seal_.previous_day != expected_previous:
            detail = f"links to {seal_.previous_day} instead of {expected_previous}"
            return _broken(from_day, to_day, count, intact, Difference(seal_.day, Problem.SEAL, None, detail))
        missing = set(seal_.columns) - set(table_columns(conn))
        if missing:
            detail = f"column {sorted(missing)[0]} is gone"
            return _broken(from_day, to_day, count, intact, Difference(seal_.day, Problem.SEAL, None, detail))
        rows = _day_rows(conn, seal_.day, seal_.columns)
        now = chain_day(seal_.day, previous.chain.day_hash if previous else None, rows)
        differs = compare(seal_.chain, now, seal_.id_horizon)
        if differs is not None:
            return _broken(from_day, to_day, count + 1, intact, differs)
        intact, previous = seal_.day, seal_
    return CheckReport(from_day, to_day, len(seals), intact)


def _broken(
    from_day: date | None, to_day: date | None, days: int, intact: date | None, difference: Difference
) -> CheckReport:
    return CheckReport(from_day, to_day, days, intact, difference)


@dataclass(frozen=True, slots=True)
class SealState:
    """What the log reviewer's screen says about the chain (dashboard.log_review)."""

    sealed_through: date | None
    checked_at: datetime | None
    intact_through: date | None
    problem_day: date | None
    problem_row: int | None
    problem: str | None


SEAL_STATE_SQL = (
    "SELECT (SELECT max(day) FROM access_log_seals), c.checked_at, c.intact_through, c.problem_day,"
    " c.problem_row, c.problem FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM access_log_checks"
    " ORDER BY id DESC LIMIT 1) c ON true"
)
