"""The store-and-forward queue: FIFO, durable across SIGKILL, never discards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.errors import QueueFull, QueueLocked
from gateway.queue import StoreAndForwardQueue

ROOT = Path(__file__).resolve().parent.parent


def test_fifo_order_and_peek_skips_messages_in_flight(tmp_path: Path) -> None:
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        ids = [q.put("t/a", f"m{i}".encode()) for i in range(6)]
        assert len(q) == 6
        assert [m.payload for m in q.peek(3)] == [b"m0", b"m1", b"m2"]
        in_flight = {ids[0], ids[1]}
        assert [m.message_id for m in q.peek(3, exclude=in_flight)] == ids[2:5]
        assert [m.message_id for m in q.due(3, exclude=in_flight)] == ids[2:5]
        assert q.confirm([ids[1]]).removed == 1
        assert q.confirm([ids[1]]).removed == 0  # a second receipt for the same message changes nothing
        assert [m.payload for m in q.peek(10)] == [b"m0", b"m2", b"m3", b"m4", b"m5"]
        assert q.confirm(ids[2:4]).removed == 2
        assert [m.message_id for m in q.peek(10)] == [ids[0], ids[4], ids[5]]
        assert len(q) == 3


def test_ids_topics_attempts_and_age_are_kept(tmp_path: Path) -> None:
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        assert q.oldest_age() is None
        first = q.put("hemma/v1/gw/x/measurements", b"\x00\xff", message_id="batch-1", measurements=7)
        q.put("other/topic", b"2")
        q.mark_sent([(first, 0.0)], now=1000.0)
        q.mark_sent([(first, 0.0)], now=2000.0)
        head = q.peek(1)[0]
        assert (head.message_id, head.topic, head.payload, head.attempts, head.measurements) == (
            "batch-1",
            "hemma/v1/gw/x/measurements",
            b"\x00\xff",
            2,
            7,
        )
        assert head.first_sent_at == 1000.0 and head.send_no == 2
        age = q.oldest_age()
        assert age is not None and 0 <= age.total_seconds() < 5
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            q.put("t", b"dup", message_id="batch-1")
        assert len(q) == 2


def test_contents_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with StoreAndForwardQueue(path) as q:
        ids = [q.put("t", bytes([i])) for i in range(5)]
        q.confirm([ids[0]])
        q.mark_sent([(ids[1], 5000.0), (ids[2], 6000.0)], now=100.0)
    with StoreAndForwardQueue(path) as q:
        assert len(q) == 4
        assert [m.message_id for m in q.peek(10)] == ids[1:]
        # The schedule survives too: the two sent messages wait for their time-out or a receipt.
        assert [m.message_id for m in q.due(10, now=4000.0)] == ids[3:]
        assert [m.message_id for m in q.due(10, now=5000.0)] == [ids[1], *ids[3:]]
        q.mark_sent([(ids[3], 9000.0)], now=200.0)
        assert q.peek(10)[2].send_no == 3  # sending order continues where the last run stopped


_WRITER = textwrap.dedent(
    """
    import sys
    from gateway.queue import StoreAndForwardQueue
    q = StoreAndForwardQueue(sys.argv[1])
    i = 0
    while True:
        q.put("t", f"payload-{i}".encode(), message_id=f"m{i:06d}")
        print(i, flush=True)  # only after put() returned, i.e. after the commit
        i += 1
    """
)


def test_every_acknowledged_put_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    confirmed = -1
    while confirmed < 300:
        line = child.stdout.readline()
        assert line, "writer died before being killed"
        confirmed = int(line)
    child.send_signal(signal.SIGKILL)  # mid-stream: no atexit, no close, maybe mid-transaction
    child.wait(10)
    child.stdout.close()
    with StoreAndForwardQueue(path) as q:
        stored = q.peek(100_000)
    ids = [m.message_id for m in stored]
    # Everything confirmed is there, in order, without gaps; at most the put in progress is extra.
    assert ids[: confirmed + 1] == [f"m{i:06d}" for i in range(confirmed + 1)]
    assert len(ids) - (confirmed + 1) in (0, 1)
    assert [m.payload for m in stored] == [f"payload-{i}".encode() for i in range(len(ids))]


def test_full_queue_raises_and_loses_nothing(tmp_path: Path) -> None:
    with StoreAndForwardQueue(tmp_path / "q.sqlite", max_bytes=96 * 1024) as q:
        payloads: list[bytes] = []
        with pytest.raises(QueueFull, match="full"):
            for i in range(1000):
                payload = bytes([i % 256]) * 3000
                q.put("t", payload)
                payloads.append(payload)
        assert 5 < len(payloads) < 1000
        assert len(q) == len(payloads)
        assert [m.payload for m in q.peek(1000)] == payloads  # the failed put wrote nothing
        # Once ingest has confirmed some, there is room again.
        q.confirm(m.message_id for m in q.peek(3))
        q.put("t", b"after")
        assert q.peek(1000)[-1].payload == b"after"


def test_a_second_process_cannot_open_the_same_queue(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with StoreAndForwardQueue(path) as q:
        q.put("t", b"1")
        with pytest.raises(QueueLocked, match="another process"):
            StoreAndForwardQueue(path)
        assert len(q) == 1


def test_a_message_waits_for_its_receipt_and_goes_again_after_its_time_out(tmp_path: Path) -> None:
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        a, b = q.put("t", b"a", measurements=2), q.put("t", b"b", measurements=3)
        assert q.unconfirmed().messages == 0  # queued, never sent
        q.mark_sent([(a, 160.0), (b, 170.0)], now=100.0)
        assert q.due(10, now=150.0) == []  # sent, and its time-out has not passed
        waiting = q.unconfirmed()
        assert (waiting.messages, waiting.measurements, waiting.oldest_first_sent_at) == (2, 5, 100.0)
        assert [m.message_id for m in q.due(10, now=165.0)] == [a]
        q.mark_sent([(a, 400.0)], now=165.0)  # sent again: the first sending still dates it
        assert q.unconfirmed().oldest_first_sent_at == 100.0
        assert q.confirm([a, b]).removed == 2
        assert len(q) == 0 and q.unconfirmed().messages == 0


def test_a_receipt_for_a_later_message_makes_the_earlier_unconfirmed_ones_due(tmp_path: Path) -> None:
    """Receipts come back in sending order, so a gap behind a receipt is a loss: send it again now."""
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        ids = [q.put("t", bytes([i])) for i in range(5)]
        q.mark_sent([(m, 10_000.0) for m in ids[:4]], now=100.0)  # ids[4] is never sent
        done = q.confirm([ids[2]])
        assert (done.removed, done.made_due) == (1, 2)  # ids[0] and ids[1], sent before ids[2]
        assert [m.message_id for m in q.due(10, now=200.0)] == [ids[0], ids[1], ids[4]]
        # ids[3] was sent after the confirmed one: it may still be on its way, so it keeps its time-out.
        q.mark_sent([(ids[0], 10_000.0), (ids[1], 10_000.0)], now=300.0)  # re-sent after ids[3]
        assert q.confirm([ids[3]]).made_due == 0


def test_a_receipt_for_a_resent_message_proves_only_what_was_sent_before_its_first_copy(
    tmp_path: Path,
) -> None:
    """The receipt may be for the first copy (ingest was slow, not the broker lossy): messages sent
    between the copies may still be on their way and must not be sent again for it."""
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        a, b = q.put("t", b"a"), q.put("t", b"b")
        q.mark_sent([(a, 10_000.0)], now=100.0)  # sending 1
        q.mark_sent([(b, 10_000.0)], now=101.0)  # sending 2
        q.mark_sent([(a, 10_000.0)], now=200.0)  # sending 3: a's time-out passed, a goes again
        assert q.confirm([a]).made_due == 0
        assert q.due(10, now=300.0) == []


def test_reschedule_and_a_queue_written_before_receipts(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with sqlite3.connect(path) as old:  # the outbox of a gateway from before receipts
        old.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,"
            " topic TEXT NOT NULL, payload BLOB NOT NULL, enqueued_at REAL NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0)"
        )
        old.execute("INSERT INTO outbox (message_id, topic, payload, enqueued_at, attempts) VALUES"
                    " ('old-1', 't', x'01', 1.0, 3)")  # fmt: skip
    old.close()
    with StoreAndForwardQueue(path) as q:
        assert [(m.message_id, m.attempts, m.send_no) for m in q.due(10, now=0.0)] == [("old-1", 3, None)]
        q.mark_sent([("old-1", 500.0)], now=100.0)
        q.reschedule(["old-1"], 120.0)  # e.g. PUBACK 0x10: nobody received it
        assert q.due(10, now=119.0) == [] and len(q.due(10, now=120.0)) == 1
