"""The ward's shifts (care.shifts): boundaries in the site's zone, around midnight and the two DST
changes of 2026 in Europe/Stockholm, and the names `?skift=` and `--shift` take."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from care.refusals import RefusalCode, Refused
from care.shifts import current_shift, parse_shift, previous_shift, recent_shifts, shift_of

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now_utc", "name"),
    [
        # Winter (UTC+1): 07:00 local is 06:00 UTC.
        ("2026-12-07T05:59:59", "2026-12-06-natt"),  # 06:59:59 local, still the night of the 6th
        ("2026-12-07T06:00:00", "2026-12-07-dag"),
        ("2026-12-06T22:59:59", "2026-12-06-natt"),  # 23:59:59 local
        ("2026-12-06T23:00:00", "2026-12-06-natt"),  # midnight local: the same night goes on
        ("2026-12-06T13:59:59", "2026-12-06-dag"),
        ("2026-12-06T14:00:00", "2026-12-06-kvall"),
        ("2026-12-06T20:00:00", "2026-12-06-natt"),  # 21:00 local
        # Summer (UTC+2): 07:00 local is 05:00 UTC.
        ("2026-07-01T04:59:00", "2026-06-30-natt"),
        ("2026-07-01T05:00:00", "2026-07-01-dag"),
    ],
)
def test_the_shift_of_an_instant(now_utc: str, name: str) -> None:
    assert current_shift(utc(now_utc), STOCKHOLM).name == name


def test_a_night_across_midnight_is_ten_hours_and_named_by_its_start() -> None:
    night = shift_of(date(2026, 12, 6), "natt", STOCKHOLM)
    assert (night.starts_at, night.ends_at) == (utc("2026-12-06T20:00:00"), utc("2026-12-07T06:00:00"))
    assert night.label_sv(STOCKHOLM) == "Natt 6/12 21:00–07:00"
    assert shift_of(date(2026, 12, 7), "dag", STOCKHOLM).starts_at == night.ends_at


def test_the_nights_of_the_clock_changes_are_nine_and_eleven_hours() -> None:
    spring = shift_of(date(2026, 3, 28), "natt", STOCKHOLM)  # clocks go 02:00 -> 03:00 on the 29th
    assert (spring.starts_at, spring.ends_at) == (utc("2026-03-28T20:00:00"), utc("2026-03-29T05:00:00"))
    assert spring.ends_at - spring.starts_at == timedelta(hours=9)
    autumn = shift_of(date(2026, 10, 24), "natt", STOCKHOLM)  # clocks go 03:00 -> 02:00 on the 25th
    assert (autumn.starts_at, autumn.ends_at) == (utc("2026-10-24T19:00:00"), utc("2026-10-25T06:00:00"))
    assert autumn.ends_at - autumn.starts_at == timedelta(hours=11)
    # Inside the repeated hour (02:30 local happens twice) it is the same night either time.
    assert current_shift(utc("2026-10-25T00:30:00"), STOCKHOLM).name == "2026-10-24-natt"
    assert current_shift(utc("2026-10-25T01:30:00"), STOCKHOLM).name == "2026-10-24-natt"
    # The day after each change starts at 07:00 local in the new offset.
    assert shift_of(date(2026, 3, 29), "dag", STOCKHOLM).starts_at == utc("2026-03-29T05:00:00")
    assert shift_of(date(2026, 10, 25), "dag", STOCKHOLM).starts_at == utc("2026-10-25T06:00:00")


def test_shifts_follow_each_other_without_gap_or_overlap() -> None:
    shifts = recent_shifts(utc("2026-10-26T12:00:00"), STOCKHOLM, 12)
    assert [s.name for s in shifts[:4]] == [
        "2026-10-26-dag", "2026-10-25-natt", "2026-10-25-kvall", "2026-10-25-dag",
    ]  # fmt: skip
    for later, earlier in itertools.pairwise(shifts):
        assert earlier.ends_at == later.starts_at
        assert previous_shift(later, STOCKHOLM) == earlier


def test_shift_names_are_parsed_and_refused() -> None:
    now = utc("2026-12-06T12:00:00")
    assert parse_shift("2026-12-05-natt", now, STOCKHOLM) == shift_of(date(2026, 12, 5), "natt", STOCKHOLM)
    assert parse_shift("2026-12-06-dag", now, STOCKHOLM).name == "2026-12-06-dag"  # running: allowed
    for bad in ("2026-12-06-kvall", "2026-02-30-dag", "2026-12-06-morgon", "x", "", "0001-01-01-dag",
                "9999-12-31-natt", "2026-12-06-dag\x00", "2026-12-06-natt; DROP TABLE wards"):  # fmt: skip
        with pytest.raises(Refused) as refused:
            parse_shift(bad, now, STOCKHOLM)
        assert refused.value.code is RefusalCode.HANDOVER_SHIFT
