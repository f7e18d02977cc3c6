"""Durable store-and-forward FIFO of outgoing MQTT messages, kept in SQLite.

A home gateway can be offline for days (broken router, 4G dongle out of credit). Every
message is committed to disk before the publisher sees it, and leaves the queue only when
ingest's receipt names it (`confirm`): only the end that stores a reading can confirm it. A
broker's PUBACK is a hop, not a delivery (a broker that crashes before its next snapshot, or
that has no subscriber yet, acknowledges and loses). So a power cut, a SIGKILL or a broker
crash loses nothing that `put()` returned for.

Each message carries its sending schedule:

* `resend_at`: from when it is due for (re)sending; 0 for a message never sent. Sending sets
  it to the time-out after which it goes again if no receipt has come (`mark_sent`).
* `send_no`, `first_send_no`: the order of its latest and of its first sending. Receipts come
  back in sending order (the broker queues a client's messages for ingest in order, ingest
  commits them in order). A receipt names a message, not the copy that arrived, and that copy
  was sent no earlier than the message's first sending: so every message whose latest sending
  came before that reached ingest or was lost, and `confirm` makes the unconfirmed ones due at
  once instead of waiting for their time-out.
* `first_sent_at`, `measurements`: for the status's `unconfirmed` summary.
* `topic`: where the publisher sends it, the kit's measurements topic (`MeasurementBatch`) or its events
  topic (`KitEventBatch`, the box's button; issue 10). Both are confirmed by the same receipts. The loss
  detection above is per topic: MQTT keeps the order of one topic's messages, and ingest may commit
  events and measurements on separate paths, so a receipt proves a gap only among its own topic's.
* `events`: the patient's events in the message (a contact request), so the box's light can show
  that one waits for its receipt, also after a reboot (`waiting_events`).

The file also keeps, per vital, when the latest reading the gateway queued was taken
(`last_readings`, written in the same commit as its message), for the box's reminder light.

* WAL journal with `synchronous=FULL`: a commit is on disk when `put()` returns (NORMAL
  would keep the WAL fsync for checkpoints and could lose the last commits on power loss).
* `locking_mode=EXCLUSIVE`: one process per queue file; two gateways draining one queue
  would publish everything twice.
* Never discards. A full disk (or the optional `max_bytes` quota) raises `QueueFull` and the
  caller keeps the message and retries: back-pressure, not loss.

One connection, guarded by a lock, is shared by the BLE side (put) and the publisher thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from gateway.errors import QueueFull, QueueLocked

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO order; AUTOINCREMENT never reuses a number
    message_id    TEXT NOT NULL UNIQUE,
    topic         TEXT NOT NULL,
    payload       BLOB NOT NULL,
    enqueued_at   REAL NOT NULL,                      -- Unix time, seconds
    attempts      INTEGER NOT NULL DEFAULT 0          -- times published
)
"""
# Added with receipts; ALTERed into a queue file written by an older gateway, whose messages then
# count as never sent (they are sent again: ingest stores each reading once whatever arrives twice).
_COLUMNS = {
    "measurements": "INTEGER NOT NULL DEFAULT 0",  # readings in the message, for the status
    "send_no": "INTEGER",  # order of the latest sending; NULL: never sent
    "first_send_no": "INTEGER",  # order of the first sending
    "first_sent_at": "REAL",  # Unix time of the first sending
    "resend_at": "REAL NOT NULL DEFAULT 0",  # due for (re)sending from this Unix time
    # Added with the box's button (issue 10): events in the message; 0 in an older file's messages,
    # which were all measurements.
    "events": "INTEGER NOT NULL DEFAULT 0",
}
# Per vital, the Unix time of the latest reading queued (for the reminder light, gateway.box); created
# in an older file too, empty there: its vitals count as never measured, so the light errs towards on.
_LAST_READINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS last_readings (
    vital       TEXT PRIMARY KEY,
    taken_at    REAL NOT NULL                         -- Unix time, seconds
)
"""
# The kit's applied configuration (gateway.kit), one row; created in a queue file written by an older
# gateway too. Kept with the queue so that a reboot without network still reads only the kit's own
# devices: the payload exactly as it came from the broker, validated again when it is loaded.
_KIT_CONFIG_SCHEMA = """
CREATE TABLE IF NOT EXISTS kit_config (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    version     INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    applied_at  REAL NOT NULL                         -- Unix time, seconds
)
"""
_FIELDS = "message_id, topic, payload, enqueued_at, attempts, measurements, send_no, first_sent_at, seq"


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    message_id: str
    topic: str
    payload: bytes
    enqueued_at: datetime
    attempts: int
    measurements: int
    send_no: int | None
    first_sent_at: float | None
    seq: int  # position in the queue (FIFO order)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What one receipt did to the queue."""

    removed: int  # messages it named that were still queued
    made_due: int  # unconfirmed messages sent before them, due again at once


@dataclass(frozen=True, slots=True)
class UnconfirmedSummary:
    """Messages sent at least once and not yet confirmed by a receipt."""

    messages: int
    measurements: int
    oldest_first_sent_at: float | None  # Unix time; None when there are none


class StoreAndForwardQueue:
    """A durable FIFO of `(message_id, topic, payload)` with a sending schedule; see the module docstring."""

    def __init__(self, path: Path | str, *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each put is exactly one commit.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.5)
        try:
            self._open(max_bytes)
        except BaseException:
            self._db.close()
            raise
        self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self._send_no = self._db.execute("SELECT coalesce(max(send_no), 0) FROM outbox").fetchone()[0]
        self._closed = False

    def _open(self, max_bytes: int | None) -> None:
        db = self._db
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # Take the exclusive lock now, so a second process fails here and not on its first put.
            db.execute("BEGIN IMMEDIATE")
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise QueueLocked(
                    f"{self.path} is in use by another process; run one gateway per queue file"
                ) from exc
            raise
        if mode.lower() != "wal":
            raise RuntimeError(
                f"SQLite refused WAL mode for {self.path} (got {mode!r}); is it on a network share?"
            )
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        db.execute(_KIT_CONFIG_SCHEMA)
        db.execute(_LAST_READINGS_SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
        for name, definition in _COLUMNS.items():
            if name not in have:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {definition}")
        # Partial indexes, so that the publisher's questions cost what they return, not the queue's length
        # (a kit back from days offline holds tens of thousands of messages, many awaiting receipts):
        # never-sent messages in order, sent ones by when they are due again, and the status summary.
        db.execute("CREATE INDEX IF NOT EXISTS outbox_send_no ON outbox (send_no)")
        db.execute("CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE send_no IS NULL")
        db.execute("CREATE INDEX IF NOT EXISTS outbox_resend ON outbox (resend_at) WHERE send_no IS NOT NULL")
        db.execute(
            "CREATE INDEX IF NOT EXISTS outbox_unconfirmed ON outbox (first_sent_at, measurements)"
            " WHERE send_no IS NOT NULL"
        )
        db.execute("CREATE INDEX IF NOT EXISTS outbox_events ON outbox (seq) WHERE events > 0")
        if max_bytes is not None:
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={max(int(max_bytes) // page_size, 8)}")

    # --- writing ------------------------------------------------------------------------------

    def put(
        self,
        topic: str,
        payload: bytes,
        *,
        message_id: str | None = None,
        measurements: int = 0,
        events: int = 0,
        readings: Mapping[str, float] | None = None,
    ) -> str:
        """Append one message, due at once; returns its id once the commit is on disk.

        `readings` (vital -> Unix time it was taken) raises each vital's `last_readings` time, in the
        same commit: the reminder light never counts a reading the queue could still lose.
        Raises QueueFull when the disk or quota is full; nothing was written then.
        """
        message_id = message_id or str(uuid.uuid4())
        with self._lock:
            self._transaction(
                [
                    (
                        "INSERT INTO outbox (message_id, topic, payload, enqueued_at, measurements, events)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [(message_id, topic, bytes(payload), time.time(), measurements, events)],
                    ),
                    (
                        "INSERT INTO last_readings (vital, taken_at) VALUES (?, ?) ON CONFLICT (vital)"
                        " DO UPDATE SET taken_at = max(taken_at, excluded.taken_at)",
                        sorted((readings or {}).items()),
                    ),
                ]
            )
            self._count += 1
        return message_id

    def mark_sent(self, sent: Sequence[tuple[str, float]], *, now: float | None = None) -> None:
        """Record one sending of each `(message_id, resend_at)`, in the order given (one commit)."""
        if not sent:
            return
        at = time.time() if now is None else now
        with self._lock:
            rows = []
            for message_id, resend_at in sent:
                self._send_no += 1
                rows.append((self._send_no, at, resend_at, message_id))
            self._write(
                "UPDATE outbox SET attempts = attempts + 1, send_no = ?1,"
                " first_send_no = coalesce(first_send_no, ?1), first_sent_at = coalesce(first_sent_at, ?2),"
                " resend_at = ?3 WHERE message_id = ?4",
                rows,
            )

    def reschedule(self, message_ids: Iterable[str], resend_at: float) -> None:
        """Make messages due again at `resend_at` (0: at once), e.g. when the broker said nobody received
        them, or the connection dropped before their PUBACK."""
        rows = [(resend_at, m) for m in message_ids]
        if rows:
            with self._lock:
                self._write("UPDATE outbox SET resend_at = ? WHERE message_id = ?", rows)

    def confirm(self, message_ids: Iterable[str]) -> Confirmation:
        """Ingest's receipt: forget these messages, and make every unconfirmed message whose latest sending
        came before the first sending of the last of them due at once (it was lost on the way). One commit."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return Confirmation(0, 0)
        with self._lock:
            marks = ",".join("?" * len(ids))
            latest = self._db.execute(
                f"SELECT topic, max(first_send_no) FROM outbox WHERE message_id IN ({marks})"
                " AND first_send_no IS NOT NULL GROUP BY topic",
                ids,
            ).fetchall()
            before = self._db.total_changes
            try:
                self._db.execute("BEGIN IMMEDIATE")
                removed = self._db.execute(f"DELETE FROM outbox WHERE message_id IN ({marks})", ids).rowcount
                made_due = 0
                for topic, first_send_no in latest:
                    made_due += self._db.execute(
                        "UPDATE outbox INDEXED BY outbox_send_no SET resend_at = 0"
                        " WHERE send_no < ? AND resend_at > 0 AND topic = ?",
                        (first_send_no, topic),
                    ).rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            assert self._db.total_changes - before == removed + made_due
            self._count -= removed
        return Confirmation(removed, made_due)

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        return self._transaction([(sql, rows)])

    def _transaction(self, statements: Sequence[tuple[str, Sequence[tuple[object, ...]]]]) -> int:
        """Each statement over its rows, all in one commit; the number of rows changed."""
        before = self._db.total_changes
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, rows in statements:
                if rows:
                    self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise QueueFull(
                    f"store-and-forward queue {self.path} is full ({len(self)} messages waiting); "
                    "free disk space or restore the network so the queue can drain"
                ) from exc
            raise
        return self._db.total_changes - before

    def save_kit_config(self, version: int, payload: bytes) -> None:
        """Keep the kit configuration just applied (replacing the one before); on disk when it returns."""
        with self._lock:
            self._write(
                "INSERT INTO kit_config (id, version, payload, applied_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, payload = excluded.payload,"
                " applied_at = excluded.applied_at",
                [(version, bytes(payload), time.time())],
            )

    def kit_config(self) -> bytes | None:
        """The payload of the kit configuration last saved, or None when the kit never had one."""
        with self._lock:
            row = self._db.execute("SELECT payload FROM kit_config WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])

    def last_readings(self) -> dict[str, float]:
        """Per vital, the Unix time of the latest reading queued (ever, in this file)."""
        with self._lock:
            rows = self._db.execute("SELECT vital, taken_at FROM last_readings").fetchall()
        return {vital: float(at) for vital, at in rows}

    def waiting_events(self) -> int:
        """Events (contact requests) in messages still waiting for ingest's receipt."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT coalesce(sum(events), 0) FROM outbox INDEXED BY outbox_events WHERE events > 0"
            ).fetchone()
        return int(count)

    # --- reading ------------------------------------------------------------------------------

    def due(
        self, limit: int, *, now: float | None = None, exclude: Collection[str] = ()
    ) -> list[QueuedMessage]:
        """Up to `limit` messages due at `now`, oldest first, skipping ids in `exclude` (those in flight):
        sent ones whose time has come to go again, and those never sent."""
        at = time.time() if now is None else now
        again = self._select(
            "INDEXED BY outbox_resend", "send_no IS NOT NULL AND resend_at <= ?", [at], limit, exclude
        )
        fresh = self._select("INDEXED BY outbox_unsent", "send_no IS NULL", [], limit, exclude)
        return sorted(again + fresh, key=lambda m: m.seq)[:limit]

    def peek(self, limit: int, exclude: Collection[str] = ()) -> list[QueuedMessage]:
        """The oldest `limit` messages whatever their schedule, oldest first, skipping ids in `exclude`."""
        return self._select("", "1", [], limit, exclude)

    def _select(
        self, index: str, condition: str, params: list[object], limit: int, exclude: Collection[str]
    ) -> list[QueuedMessage]:
        if limit <= 0:
            return []
        excluded = list(exclude)
        if excluded:
            condition += f" AND message_id NOT IN ({','.join('?' * len(excluded))})"
        # `index` and `condition` are fixed strings plus '?' placeholders; values travel as parameters.
        # The index is named: with ORDER BY seq and a LIMIT, SQLite would rather walk the whole queue
        # in order, reading past every message that waits for its receipt.
        sql = f"SELECT {_FIELDS} FROM outbox {index} WHERE {condition} ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*params, *excluded, limit]).fetchall()
        return [
            QueuedMessage(mid, topic, bytes(payload), datetime.fromtimestamp(at, UTC), *rest)
            for mid, topic, payload, at, *rest in rows
        ]

    def __len__(self) -> int:
        return self._count

    def oldest_age(self, now: float | None = None) -> timedelta | None:
        """How long the oldest queued message has waited, or None when the queue is empty."""
        with self._lock:
            row = self._db.execute("SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return timedelta(seconds=max(0.0, (time.time() if now is None else now) - row[0]))

    def unconfirmed(self) -> UnconfirmedSummary:
        """Messages sent at least once without a receipt yet."""
        with self._lock:
            count, measurements, oldest = self._db.execute(
                "SELECT count(*), coalesce(sum(measurements), 0), min(first_sent_at)"
                " FROM outbox INDEXED BY outbox_unconfirmed WHERE send_no IS NOT NULL"
            ).fetchone()
        return UnconfirmedSummary(int(count), int(measurements), oldest)

    # --- lifetime -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._closed = True

    def __enter__(self) -> StoreAndForwardQueue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
