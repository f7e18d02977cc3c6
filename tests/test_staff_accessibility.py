"""The accessibility audit of the staff screens built for issue 11 ("the ward's tools"): axe-core (WCAG 2.x
A/AA and best practice, tests/support/axe.py) run in a real Chromium on each screen of a real dashboard over
one seeded ward, and no serious or critical violation allowed.

One region is seeded once for the module: a ward of 25 patients with levels, alerts, kits and contact
requests around Oskar, whose record carries a month of readings for the charts; a physician on call with an
open high alert on her phone; kits in stock; an admin. Desktop screens at 1440x900; the ward list and the
on-call physician's alert at 390x844. Screenshots of every screen audited go to $HEMMA_SCREENSHOTS when set.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from benchmarks.dashboard import seed_ward
from care.acting import execute
from care.care_levels import review, set_level
from care.oncall import add_oncall_shift
from care.staff import create_staff_user, set_staff_contact
from core.settings import Settings
from tests.support.axe import assert_no_serious, screenshot
from tests.support.chart_seed import seed_chart_ward
from tests.support.dashboard_server import log_in_page, running_dashboard
from tests.support.escalation import high_alert
from tests.support.ward_seed import PASSWORD

WARD = "avd-hjarta"
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@dataclass(frozen=True, slots=True)
class Site:
    url: str
    oskar: uuid.UUID
    alert_id: int


@pytest.fixture(scope="module")
def site(module_db_url: str) -> Iterator[Site]:
    with psycopg.connect(module_db_url, autocommit=True) as db:
        chart = seed_chart_ward(db)  # Oskar's month of readings; nurse.hjarta, dr.hjarta
        row = db.execute("SELECT id FROM staff_users WHERE username = 'dr.hjarta'").fetchone()
        assert row is not None
        seed_ward(db, WARD, patients=24, alerts=8, physician_id=row[0])
        create_staff_user(db, username="it.admin", display_name="Ada Admin", role="admin", password=PASSWORD,
                          ward_ids=[])  # fmt: skip
        # Oskar: red, reviewed once; an open high alert the on-call physician is paged for.
        execute(db, set_level(patient_id=chart.oskar, level="red", reason="Tilltagande andfåddhet",
                              by="dr.hjarta", origin=None))  # fmt: skip
        execute(db, review(patient_id=chart.oskar, note="Mår bättre, äter och dricker", by="nurse.hjarta",
                           origin=None))  # fmt: skip
        alert_id = high_alert(db, chart.oskar, WARD, opened_at=datetime.now(UTC) - timedelta(minutes=6))
        set_staff_contact(db, username="dr.hjarta", email="erik.lund@region.example")
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        add_oncall_shift(db, ward_id=WARD, username="dr.hjarta", level=1, starts_at=now - timedelta(hours=8),
                         ends_at=now + timedelta(hours=8))  # fmt: skip
        # The next shift after a gap: the rota shows both and the gap between.
        add_oncall_shift(db, ward_id=WARD, username="dr.hjarta", level=1, starts_at=now + timedelta(hours=12),
                         ends_at=now + timedelta(hours=20))  # fmt: skip
        db.execute("INSERT INTO gateways (id) VALUES ('kit-0101'), ('kit-0102')")  # in stock
    with running_dashboard(Settings(database_url=module_db_url)) as url:
        yield Site(url, chart.oskar, alert_id)


@contextlib.contextmanager
def _logged_in(browser: Any, site: Site, username: str, first: str, size: dict[str, Any]) -> Iterator[Any]:
    """A page of a fresh browser context of that size, logged in as `username` (on `first`)."""
    context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm", **size)
    try:
        page = context.new_page()
        log_in_page(page, site.url, first, username, PASSWORD)
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def nurse(browser: Any, site: Site) -> Iterator[Any]:
    with _logged_in(browser, site, "nurse.hjarta", "/kits", DESKTOP) as page:
        yield page


@pytest.fixture(scope="module")
def physician(browser: Any, site: Site) -> Iterator[Any]:
    with _logged_in(browser, site, "dr.hjarta", f"/wards/{WARD}/settings", DESKTOP) as page:
        yield page


@pytest.fixture(scope="module")
def admin(browser: Any, site: Site) -> Iterator[Any]:
    with _logged_in(browser, site, "it.admin", "/admin/staff", DESKTOP) as page:
        yield page


def _audit(page: Any, name: str) -> None:
    """axe-core on the page with every <details> opened: the forms folded away (a limit editor, a
    confirmation, a chart's table) are audited too, as a person opening them meets them."""
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    screenshot(page, f"staff-axe/{name}")
    assert_no_serious(page, name)


def _ward(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots >= 1")


def test_ward_overview_as_cards(nurse: Any, site: Site) -> None:
    _ward(nurse, f"{site.url}/wards/{WARD}?vy=kort")
    assert nurse.locator("#patients > article.patient").count() == 25
    _audit(nurse, "ward-cards")


def test_ward_overview_as_the_list_with_a_filter(nurse: Any, site: Site) -> None:
    _ward(nurse, f"{site.url}/wards/{WARD}?vy=lista&visa=larm")
    shown = nurse.locator("#patients > tr").count()
    assert 0 < shown < 25
    _audit(nurse, "ward-list-larm")


def test_the_record_with_its_charts(physician: Any, site: Site) -> None:
    physician.goto(f"{site.url}/patients/{site.oskar}")
    physician.wait_for_function(
        "() => Number(document.querySelector('[data-vital-charts]').dataset.loads || 0) >= 1", timeout=20_000
    )
    assert physician.locator("#diagram [data-chart]").count() >= 6
    assert physician.locator("#limit-editor").count() == 1  # a physician's record: the most forms
    _audit(physician, "record")


def test_dagens_rond(nurse: Any, site: Site) -> None:
    nurse.goto(f"{site.url}/wards/{WARD}/rond")
    assert nurse.locator("h1").count() == 1
    _audit(nurse, "rond")


def test_the_handover(nurse: Any, site: Site) -> None:
    nurse.goto(f"{site.url}/wards/{WARD}/overlamning")
    assert nurse.locator(".handover-patient").count() > 0
    _audit(nurse, "handover")


def test_the_kits_page(nurse: Any, site: Site) -> None:
    nurse.goto(f"{site.url}/kits")
    assert nurse.locator("tr.kit-row").count() >= 3
    _audit(nurse, "kits")


def test_admission_as_a_physician(physician: Any, site: Site) -> None:
    physician.goto(f"{site.url}/wards/{WARD}/admit")
    assert physician.locator("select[name=gateway_id] option").count() >= 2
    assert physician.locator("input[name=level]").count() > 0  # a physician also chooses the level
    _audit(physician, "admit")


def test_admission_refused_names_the_field(physician: Any, site: Site) -> None:
    # A personal number that is no number: the form comes back with the refusal, the field marked and
    # described by both its hint and the refusal (nothing is admitted, the ward stays as seeded).
    physician.goto(f"{site.url}/wards/{WARD}/admit")
    physician.fill("#display_name", "Astrid Lindqvist")
    physician.fill("#personal_number", "1948")
    physician.fill("#care_reason", "Hjärtsvikt, ökad vikt")
    physician.get_by_role("button", name="Skriv in patienten").click()
    physician.wait_for_selector("#form-error")
    field = physician.locator("#personal_number")
    assert field.get_attribute("aria-invalid") == "true"
    assert set((field.get_attribute("aria-describedby") or "").split()) == {"form-error", "pnr-hint"}
    _audit(physician, "admit-refused")


def test_the_ward_settings_inclusion_checklist(physician: Any, site: Site) -> None:
    physician.goto(f"{site.url}/wards/{WARD}/settings")
    assert physician.locator("textarea[name=items]").count() == 1  # a physician may edit it
    _audit(physician, "ward-settings")


def test_admin_staff(admin: Any, site: Site) -> None:
    admin.goto(f"{site.url}/admin/staff")
    _audit(admin, "admin-staff")


def test_admin_rota(admin: Any, site: Site) -> None:
    admin.goto(f"{site.url}/admin/rota?avdelning={WARD}")
    assert admin.locator(".rota-shift").count() == 2
    _audit(admin, "admin-rota")


def test_the_ward_list_on_a_phone(browser: Any, site: Site) -> None:
    with _logged_in(browser, site, "nurse.hjarta", f"/wards/{WARD}?vy=lista", PHONE) as page:
        page.wait_for_function("() => window.hemma && window.hemma.snapshots >= 1")
        assert page.locator("#patients > tr").count() == 25
        _audit(page, "ward-list-phone")


def test_the_on_call_physicians_alert_on_her_phone(browser: Any, site: Site) -> None:
    with _logged_in(browser, site, "dr.hjarta", f"/alerts/{site.alert_id}", PHONE) as page:
        assert page.locator(".phone-ack-button").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        _audit(page, "alert-phone")
