"""core.events: every event survives encode → parse unchanged, anything else is refused with a reason,
and long id lists are split so each NOTIFY payload fits PostgreSQL's 8000-byte limit."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import events
from core.events import AlertsChanged, EventRejected, GatewayChanged, SessionsChanged, VitalsChanged

ward_ids = st.one_of(st.none(), st.text(min_size=1, max_size=40))
any_event = st.one_of(
    st.builds(VitalsChanged, ward_ids, st.lists(st.uuids(), max_size=100).map(tuple)),
    st.builds(AlertsChanged, ward_ids, st.lists(st.integers(0, 2**62), max_size=100).map(tuple)),
    st.builds(
        GatewayChanged, ward_ids, st.text(min_size=1, max_size=63), st.sampled_from(["online", "offline"])
    ),
    st.just(SessionsChanged()),
)


@given(any_event)
def test_every_event_round_trips(event: events.Event) -> None:
    payload = events.encode(event)
    assert len(payload.encode()) < 8000
    assert events.parse(payload) == event


def test_the_trigger_written_session_event_parses() -> None:
    # migration 0006's trigger writes this literal; it is the one event not built by encode
    assert events.parse('{"kind": "sessions"}') == SessionsChanged()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"kind": "weather"}', "unknown event kind"),
        ('{"kind": "vitals", "ward_id": "w", "patient_ids": ["nope"]}', "without valid ids"),
        ('{"kind": "vitals", "ward_id": "w", "patient_ids": "abc"}', "without valid ids"),
        ('{"kind": "alerts", "ward_id": "w", "alert_ids": [1, true]}', "must be integers"),
        ('{"kind": "alerts", "ward_id": "w", "alert_ids": ["1"]}', "must be integers"),
        ('{"kind": "alerts", "ward_id": 7, "alert_ids": [1]}', "ward_id must be"),
        ('{"kind": "gateway", "ward_id": null, "gateway_id": "gw-1", "status": "exploded"}', "known status"),
        ('{"kind": "gateway", "ward_id": null, "status": "online"}', "without valid ids"),
    ],
)
def test_anything_else_is_refused_with_a_reason(payload: str, reason: str) -> None:
    with pytest.raises(EventRejected, match=reason):
        events.parse(payload)


def test_long_id_lists_are_split_to_fit_notify() -> None:
    ids = tuple(uuid.uuid4() for _ in range(250))
    with pytest.raises(ValueError, match="split it first"):
        events.encode(VitalsChanged("ward", ids))
    parts = list(events.split([VitalsChanged("ward", ids), AlertsChanged("ward", (1, 2))]))
    assert [len(p.patient_ids) for p in parts[:3] if isinstance(p, VitalsChanged)] == [100, 100, 50]
    assert parts[3] == AlertsChanged("ward", (1, 2))
    assert sum((p.patient_ids for p in parts[:3] if isinstance(p, VitalsChanged)), ()) == ids
    assert all(len(events.encode(p)) < 8000 for p in parts)


def test_an_event_carries_ids_only() -> None:
    body = json.loads(events.encode(GatewayChanged("ward-4", "gw-oskar", "online")))
    assert body == {"kind": "gateway", "ward_id": "ward-4", "gateway_id": "gw-oskar", "status": "online"}
