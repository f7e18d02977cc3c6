"""Durable store-and-forward FIFO of outgoing MQTT messages, kept in SQLite.

A home gateway can be offline for days (broken router, 4G dongle out of credit). Every
message is committed to disk before the publisher sees it, and leaves the queue only when
the broker has acknowledged it (PUBACK), so a power cut or a SIGKILL loses nothing that
`put()` returned for.

* WAL journal with `synchronous=FULL`: a commit is on disk when `put()` returns (NORMAL
  would keep the WAL fsync for checkpoints and could lose the last commits on power loss).
* `locking_mode=EXCLUSIVE`: one process per queue file; two gateways draining one queue
  would publish everything twice.
* Never discards. A full disk (or the optional `max_bytes` quota) raises `QueueFull` and the
  caller keeps the message and retries: back-pressure, not loss.

One connection, guarded by a lock, is shared by the BLE side (put) and the publisher thread
(peek/remove).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from gateway.errors import QueueFull, QueueLocked

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO order; AUTOINCREMENT never reuses a number
    message_id  TEXT NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    enqueued_at REAL NOT NULL,                      -- Unix time, seconds
    attempts    INTEGER NOT NULL DEFAULT 0           -- times handed to the broker without a PUBACK yet
)
"""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    message_id: str
    topic: str
    payload: bytes
    enqueued_at: datetime
    attempts: int


class StoreAndForwardQueue:
    """A durable FIFO of `(message_id, topic, payload)`; see the module docstring."""

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
        if max_bytes is not None:
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={max(int(max_bytes) // page_size, 8)}")

    # --- writing ------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, *, message_id: str | None = None) -> str:
        """Append one message; returns its id once the commit is on disk.

        Raises QueueFull when the disk or quota is full; nothing was written then.
        """
        message_id = message_id or str(uuid.uuid4())
        with self._lock:
            self._write(
                "INSERT INTO outbox (message_id, topic, payload, enqueued_at) VALUES (?, ?, ?, ?)",
                [(message_id, topic, bytes(payload), time.time())],
            )
            self._count += 1
        return message_id

    def remove(self, message_id: str) -> bool:
        """Forget a message the broker acknowledged; False if it was not queued."""
        return self.remove_many([message_id]) == 1

    def remove_many(self, message_ids: Iterable[str]) -> int:
        """Forget several acknowledged messages in one commit (one fsync); returns how many were queued."""
        ids = [(m,) for m in message_ids]
        if not ids:
            return 0
        with self._lock:
            removed = self._write("DELETE FROM outbox WHERE message_id = ?", ids)
            self._count -= removed
        return removed

    def mark_attempted(self, message_ids: Iterable[str]) -> None:
        """Count one more delivery attempt for each message (diagnostics: a message that never gets acked)."""
        ids = [(m,) for m in message_ids]
        if ids:
            with self._lock:
                self._write("UPDATE outbox SET attempts = attempts + 1 WHERE message_id = ?", ids)

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        before = self._db.total_changes
        try:
            self._db.execute("BEGIN IMMEDIATE")
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

    # --- reading ------------------------------------------------------------------------------

    def peek(self, limit: int, exclude: Collection[str] = ()) -> list[QueuedMessage]:
        """The oldest `limit` messages, oldest first, skipping ids in `exclude` (those in flight)."""
        if limit <= 0:
            return []
        excluded = list(exclude)
        where = f"WHERE message_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        # `where` holds only '?' placeholders; the ids travel as parameters.
        columns = "message_id, topic, payload, enqueued_at, attempts"
        sql = f"SELECT {columns} FROM outbox {where} ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*excluded, limit]).fetchall()
        return [
            QueuedMessage(mid, topic, bytes(payload), datetime.fromtimestamp(at, UTC), attempts)
            for mid, topic, payload, at, attempts in rows
        ]

    def __len__(self) -> int:
        return self._count

    def oldest_age(self, now: float | None = None) -> timedelta | None:
        """How long the oldest waiting message has waited, or None when the queue is empty."""
        with self._lock:
            row = self._db.execute("SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return timedelta(seconds=max(0.0, (time.time() if now is None else now) - row[0]))

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
