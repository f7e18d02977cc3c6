"""The access log's hash chain (issue 12, migration 0022): how one UTC day of rows becomes one hash,
and how a day recomputed from the table is compared with its seal. Pure: bytes in, hashes out.

The serialisation, written once here and in deploy/README.md ("Access log seals"), so that anyone can
recompute a seal without Hemma:

* A row is the seal's `columns` (every column of access_log when it was sealed, in table order), each
  as PostgreSQL's text output with `TimeZone = 'UTC'` and `DateStyle = 'ISO, YMD'`
  (`2026-12-05 13:40:01.123456+00`): NULL as the byte 0x00; any other value as 0x01, its UTF-8
  length in 4 bytes big-endian, and its UTF-8 bytes.
* The chain starts at SHA-256(`hemma-access-log/1` 0x00, the previous day's `day_hash` (32 zero
  bytes for the first seal), the day as `YYYY-MM-DD`), so days cannot be swapped or dropped.
* Each row, in id order: h = SHA-256(h, row bytes). The day's `day_hash` is h after its last row (the
  start itself for a day without rows).
* `row_digests` holds the first 16 bytes of SHA-256(row bytes) of each row, with `row_ids`: they only
  locate the first row that differs; the proof is `day_hash`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

TAG = b"hemma-access-log/1\x00"
GENESIS = bytes(32)
DIGEST_BYTES = 16


class Problem(StrEnum):
    """What differs in a sealed day (access_log_checks.problem)."""

    ALTERED = "altered"  # a row the seal covered has other values now
    DELETED = "deleted"  # a row the seal covered is gone
    INSERTED = (
        "inserted"  # a row dated in the day whose id was drawn after the seal: added behind the trigger
    )
    LATE = "late"  # a row whose id was drawn before the seal but committed after it (an open transaction)
    SEAL = "seal"  # the seals themselves: a day's seal is missing, or its hash or links do not agree


PROBLEM_EN = {
    Problem.ALTERED: "row {row} was altered after the day was sealed",
    Problem.DELETED: "row {row} was deleted after the day was sealed",
    Problem.INSERTED: "row {row} was inserted into the day after it was sealed",
    Problem.LATE: "row {row} was committed after the day was sealed (a transaction open across the seal)",
    Problem.SEAL: "the seal itself does not agree with the chain ({detail})",
}


def row_bytes(values: Sequence[str | None]) -> bytes:
    """One row's canonical bytes: each column's text, NULL as 0x00, else 0x01 + length + UTF-8."""
    out = bytearray()
    for value in values:
        if value is None:
            out += b"\x00"
        else:
            encoded = value.encode("utf-8")
            out += b"\x01" + struct.pack(">I", len(encoded)) + encoded
    return bytes(out)


def day_start(day: date, previous_hash: bytes | None) -> bytes:
    """The chain's value before the day's first row."""
    return hashlib.sha256(TAG + (previous_hash or GENESIS) + day.isoformat().encode("ascii")).digest()


@dataclass(frozen=True, slots=True)
class DayChain:
    """A day as hashed: what a seal stores, or what the table holds now."""

    day: date
    row_ids: tuple[int, ...]
    row_digests: bytes  # DIGEST_BYTES per row, in row_ids order
    day_hash: bytes

    def digest_of(self, index: int) -> bytes:
        return self.row_digests[index * DIGEST_BYTES : (index + 1) * DIGEST_BYTES]


def chain_day(
    day: date, previous_hash: bytes | None, rows: Iterable[tuple[int, Sequence[str | None]]]
) -> DayChain:
    """Hash `rows` ((id, column texts) in id order) of `day` onto the previous day's hash."""
    head = day_start(day, previous_hash)
    ids: list[int] = []
    digests = bytearray()
    for row_id, values in rows:
        data = row_bytes(values)
        head = hashlib.sha256(head + data).digest()
        ids.append(row_id)
        digests += hashlib.sha256(data).digest()[:DIGEST_BYTES]
    return DayChain(day, tuple(ids), bytes(digests), head)


@dataclass(frozen=True, slots=True)
class Difference:
    """The first thing that differs in a day, and the row it concerns (None for the seal itself)."""

    day: date
    problem: Problem
    row_id: int | None
    detail: str = ""

    def describe(self) -> str:
        text = PROBLEM_EN[self.problem].format(row=self.row_id, detail=self.detail)
        return f"{self.day.isoformat()}: {text}"


def compare(sealed: DayChain, now: DayChain, id_horizon: int) -> Difference | None:
    """The first row (by id) where the table's day `now` differs from its seal, or None if they agree.

    A row now present that the seal lacks is LATE when its id was drawn before the seal (`id_horizon`,
    the id sequence when sealed: it was in an uncommitted transaction then) and INSERTED otherwise.
    """
    sealed_at = {row_id: i for i, row_id in enumerate(sealed.row_ids)}
    now_at = {row_id: i for i, row_id in enumerate(now.row_ids)}
    for row_id in sorted(set(sealed_at) | set(now_at)):
        if row_id not in now_at:
            return Difference(sealed.day, Problem.DELETED, row_id)
        if row_id not in sealed_at:
            kind = Problem.LATE if row_id <= id_horizon else Problem.INSERTED
            return Difference(sealed.day, kind, row_id)
        if sealed.digest_of(sealed_at[row_id]) != now.digest_of(now_at[row_id]):
            return Difference(sealed.day, Problem.ALTERED, row_id)
    if sealed.day_hash != now.day_hash:
        # Every row agrees with its digest, yet the chain does not: the seal's hash or its link to the
        # day before was changed (or the previous seal was).
        return Difference(sealed.day, Problem.SEAL, None, "day hash")
    return None
