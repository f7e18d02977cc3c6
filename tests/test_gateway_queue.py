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
        assert q.remove(ids[1]) is True
        assert q.remove(ids[1]) is False  # a second PUBACK for the same message changes nothing
        assert [m.payload for m in q.peek(10)] == [b"m0", b"m2", b"m3", b"m4", b"m5"]
        assert q.remove_many(ids[2:4]) == 2
        assert [m.message_id for m in q.peek(10)] == [ids[0], ids[4], ids[5]]
        assert len(q) == 3


def test_ids_topics_attempts_and_age_are_kept(tmp_path: Path) -> None:
    with StoreAndForwardQueue(tmp_path / "q.sqlite") as q:
        assert q.oldest_age() is None
        first = q.put("hemma/v1/gw/x/measurements", b"\x00\xff", message_id="batch-1")
        q.put("other/topic", b"2")
        q.mark_attempted([first])
        q.mark_attempted([first])
        head = q.peek(1)[0]
        assert (head.message_id, head.topic, head.payload, head.attempts) == (
            "batch-1",
            "hemma/v1/gw/x/measurements",
            b"\x00\xff",
            2,
        )
        age = q.oldest_age()
        assert age is not None and 0 <= age.total_seconds() < 5
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            q.put("t", b"dup", message_id="batch-1")
        assert len(q) == 2


def test_contents_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with StoreAndForwardQueue(path) as q:
        ids = [q.put("t", bytes([i])) for i in range(5)]
        q.remove(ids[0])
    with StoreAndForwardQueue(path) as q:
        assert len(q) == 4
        assert [m.message_id for m in q.peek(10)] == ids[1:]


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
        # Once the broker has acknowledged some, there is room again.
        q.remove_many(m.message_id for m in q.peek(3))
        q.put("t", b"after")
        assert q.peek(1000)[-1].payload == b"after"


def test_a_second_process_cannot_open_the_same_queue(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with StoreAndForwardQueue(path) as q:
        q.put("t", b"1")
        with pytest.raises(QueueLocked, match="another process"):
            StoreAndForwardQueue(path)
        assert len(q) == 1
