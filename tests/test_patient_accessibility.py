"""The accessibility audit of every patient screen (issue 10), in headless Chromium at phone (390x844)
and tablet (820x1180) sizes, for a seeded patient with a plan, two weeks of readings and a personal
limit: axe-core finds no serious or critical violation; every control is at least 56 px tall; at
200 % zoom on the phone the text reflows instead of running off sideways. With HEMMA_SCREENSHOTS set,
each screen is saved there at both sizes for a person to look at.

Screens of other parts of issue 10 that are not in this branch (404) are skipped, named; the screens of
this part (Idag, Mina värden) and the realm's own pages (not connected, the error page) never are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from care.limits import set_personal_threshold
from care.plans import set_monitoring_plan
from core.settings import Settings
from dashboard.patient_realm import DEVICE_COOKIE, NAVIGATION
from tests.support.axe import assert_no_serious, overflows_sideways, screenshot, small_targets
from tests.support.dashboard_server import running_dashboard
from tests.test_patient_today import AppSeed, backdate, reading, seed_app

SECRET = "test-session-secret-patient-a11y-01234"
SIZES = {"phone": (390, 844), "tablet": (820, 1180)}
OURS = frozenset({"/p/", "/p/varden"})  # this branch's screens: a 404 there is a failure, not a skip


@dataclass(frozen=True)
class Screen:
    name: str
    path: str
    who: str | None  # "patient", "relative" or None (no device)
    status: int = 200


SCREENS = (
    *(Screen(path.removeprefix("/p/") or "idag", path, "patient") for path, _, _ in NAVIGATION),
    Screen("idag-narstaende", "/p/", "relative"),
    Screen("anslut", "/p/anslut", None),
    Screen("inte-ansluten", "/p/", None, 401),
    Screen("fel-narstaende-mina-varden", "/p/varden", "relative", 403),
)


def seed_oskar(db: psycopg.Connection) -> AppSeed:
    """The heart-failure patient of the demo, two weeks in: daily weights rising lately, continuous
    oximetry with a dip, blood pressure and temperature 4-hourly, a physician's SpO2 limit."""
    seed = seed_app(db)
    p = seed.patient
    db.execute("UPDATE patients SET display_name = 'Oskar Lindqvist' WHERE id = %s", (p.patient_id,))
    plan = {"body_weight": timedelta(days=1), "systolic_bp": timedelta(hours=4),
            "spo2": timedelta(minutes=15), "body_temperature": timedelta(hours=4)}  # fmt: skip
    for vital, every in plan.items():
        set_monitoring_plan(db, p.patient_id, vital, every, "nurse.norr")
    backdate(db, p, 15)
    for priority, limit in (("high", 88.0), ("medium", 90.0)):
        set_personal_threshold(db, patient_id=p.patient_id, rule="spo2_low", priority=priority, limit=limit,
                               reason="Mål 90-94 % enligt läkare", set_by_username="dr.lund")  # fmt: skip
    now = datetime.now(UTC)
    for day in range(14, 0, -1):
        weight = 81.0 + (0.7 * (4 - day) if day < 4 else 0.1 * (day % 3))
        reading(db, p, "body_weight", weight, now - timedelta(days=day, hours=-1))
    for hour in range(14 * 24):
        at = now - timedelta(hours=hour, minutes=7)
        reading(db, p, "spo2", 95 - (hour % 5 == 0) * 3, at, characteristic="2A5F")
        if hour % 4 == 1:
            reading(db, p, "systolic_bp", 132 + hour % 9, at)
            reading(db, p, "diastolic_bp", 78 + hour % 5, at)
            reading(db, p, "body_temperature", 36.6 + (hour % 7) / 10, at)
    return seed


@pytest.fixture(scope="module")
def oskar_url(postgres_admin_url: str, template_database: str) -> Iterator[tuple[str, AppSeed]]:
    from tests.conftest import _with_dbname

    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as db:
            seed = seed_oskar(db)
        with running_dashboard(Settings(database_url=url, session_secret=SECRET)) as base:
            yield base, seed
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_screen(
    browser: Any, base: str, seed: AppSeed, screen: Screen, size: tuple[int, int], problems: list[str]
):  # type: ignore[no-untyped-def]
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, locale="sv-SE",
                                  timezone_id="Europe/Stockholm")  # fmt: skip
    token = {"patient": seed.patient_token, "relative": seed.relative_token}.get(screen.who or "")
    if token:
        context.add_cookies([{"name": DEVICE_COOKIE, "value": token, "url": base + "/p/"}])
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(base + screen.path)
    return context, page, response


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_patient_screen_passes_the_audit(browser: Any, oskar_url: tuple[str, AppSeed], screen: Screen,
                                         size: str) -> None:  # fmt: skip
    base, seed = oskar_url
    problems: list[str] = []
    context, page, response = open_screen(browser, base, seed, screen, SIZES[size], problems)
    try:
        if response.status == 404 and screen.path not in OURS and screen.who != "relative":
            pytest.skip(f"{screen.path} belongs to another part of issue 10, not in this branch")
        assert response.status == screen.status, f"{screen.path}: HTTP {response.status}"
        screenshot(page, f"{screen.name}-{size}")
        for i, chart in enumerate(page.locator("section.p-history").all()[:2]):
            screenshot(chart, f"{screen.name}-{size}-chart{i + 1}")
        assert_no_serious(page, f"{screen.name} ({size})")
        assert small_targets(page) == [], f"controls under 56 px on {screen.name} ({size})"
        if size == "phone":
            # 200 % zoom at 390 px is a 195 CSS px wide layout (WCAG 1.4.10 reflow).
            page.set_viewport_size({"width": 195, "height": 422})
            beyond = overflows_sideways(page)
            assert not beyond, f"{screen.name} runs off sideways at 200 % zoom: {beyond[:10]}"
            screenshot(page, f"{screen.name}-zoom200")
        # The browser reports the document's own refusal status (401, 403) as a failed load: expected.
        expected = f"status of {screen.status} " if screen.status != 200 else None
        assert [p for p in problems if not (expected and expected in p)] == [], problems
    finally:
        context.close()
