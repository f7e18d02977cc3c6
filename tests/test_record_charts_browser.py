"""The record's charts in a real Chromium under the dashboard's CSP: plotly.js served by Hemma draws each
chart from the JSON the page fetched (asserted on that data and on the points drawn), range buttons and
zoom fetch again, the table alternative lists the same buckets. Screenshots under .hemma-test/screenshots."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from tests.support.chart_seed import ChartWard, seed_chart_ward
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"


@pytest.fixture
def ward(db: psycopg.Connection) -> ChartWard:
    return seed_chart_ward(db)


def _loaded(page, count: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "n => Number(document.querySelector('[data-vital-charts]').dataset.loads || 0) >= n",
        arg=count,
        timeout=20_000,
    )


def test_a_nurse_sees_oskars_weight_climb_and_zooms_into_a_desaturation(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    ward: ChartWard,
) -> None:
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    record = f"/patients/{ward.oskar}"
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        fetched: list[str] = []
        page.on("response", lambda r: fetched.append(r.url) if "/charts/" in r.url else None)
        # Where a CSP violation comes from, should one happen.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation',"
            " e => console.error('CSP ' + e.sourceFile + ':' + e.lineNumber + ':' + e.columnNumber))"
        )
        log_in_page(page, base_url, record, "nurse.hjarta", PASSWORD)
        _loaded(page, 1)
        section = page.locator("#diagram")
        names = section.locator("[data-chart]").evaluate_all("els => els.map(e => e.dataset.chart)")
        assert names == [
            "spo2", "pulse_rate", "systolic_bp", "body_temperature", "body_weight", "respiratory_rate",
            "news2",
        ]  # fmt: skip
        assert section.locator(".chart-range[aria-pressed=true]").inner_text() == "7 dygn"

        # The weight chart: the data it was given and what plotly drew from it.
        data = page.evaluate(f"window.hemmaCharts['{ward.oskar}'].data.body_weight")
        assert data["weight_rule"]["gain_kg"][-2:] == [2.1, 2.8]
        weight = section.locator('[data-chart="body_weight"]')
        assert weight.get_attribute("data-points") == str(len(data["series"]["t"])) == "7"
        # One bar per weighing with its 3-day gain; the mean line's markers one per bucket.
        assert weight.locator(".barlayer .point").count() == len(data["weight_rule"]["t"])
        assert weight.locator(".scatterlayer .trace").nth(2).locator(".point").count() == 7
        assert "över 3-dygnsgränsen (+2,8 kg)" in weight.locator(".chart-summary").inner_text()
        weight.scroll_into_view_if_needed()
        weight.screenshot(path=str(SCREENSHOTS / "record-chart-weight.png"))

        # SpO2: hourly buckets, two limit lines (personal 88, ward 94) and their bands, the alert markers.
        spo2 = section.locator('[data-chart="spo2"]')
        spo2_data = page.evaluate(f"window.hemmaCharts['{ward.oskar}'].data.spo2")
        assert spo2.get_attribute("data-bucket") == "3600" and spo2.get_attribute("data-limits") == "2"
        assert spo2.locator(".scatterlayer .trace").nth(2).locator("path.js-line").count() == 1
        assert spo2.locator(".shapelayer path").count() >= 4
        assert spo2.get_attribute("data-markers") == str(len(spo2_data["markers"])) == "3"
        # Hover on the mean line answers in Swedish.
        spo2.scroll_into_view_if_needed()
        box = spo2.locator(".chart-plot .nsewdrag").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] * 0.5)
        page.mouse.move(box["x"] + box["width"] * 0.98, box["y"] + box["height"] * 0.5)
        hover = spo2.locator(".hoverlayer .hovertext")
        hover.first.wait_for(timeout=5000)
        # The mean line's label (other traces near that time, the markers, label their own).
        assert any("mätningar" in text for text in hover.all_text_contents())
        spo2.screenshot(path=str(SCREENSHOTS / "record-chart-spo2-hover.png"))
        section.locator(".vital-charts-head").screenshot(path=str(SCREENSHOTS / "record-charts-head.png"))
        page.screenshot(path=str(SCREENSHOTS / "record-charts.png"), full_page=True)

        # NEWS2 track: complete points filled, incomplete ones (before the nurse's first visit) hollow.
        news2 = page.evaluate(f"window.hemmaCharts['{ward.oskar}'].data.news2")["news2"]
        news2_chart = section.locator('[data-chart="news2"]')
        assert any(p["complete"] for p in news2) and any(not p["complete"] for p in news2)
        hollow = news2_chart.locator(".scatterlayer .trace").nth(2).locator(".point")
        assert hollow.count() == sum(not p["complete"] for p in news2)

        # Zoom: drag across the last hours of the SpO2 chart; the window is fetched again in 5-minute buckets.
        loads = int(section.get_attribute("data-loads") or 0)
        page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.995, box["y"] + box["height"] * 0.5, steps=5)
        page.mouse.up()
        _loaded(page, loads + 1)
        assert spo2.get_attribute("data-bucket") == "300"
        assert any("from=" in url and "/spo2?" in url for url in fetched)
        spo2.screenshot(path=str(SCREENSHOTS / "record-chart-spo2-zoomed.png"))

        # The table alternative: one row per bucket of the chart, plus its markers.
        section.locator('.chart-range[data-range="24h"]').click()
        _loaded(page, loads + 2)
        table = section.locator('[data-chart="body_temperature"] .chart-table')
        table.locator("summary").click()
        temperature = page.evaluate(f"window.hemmaCharts['{ward.oskar}'].data.body_temperature")
        assert len(temperature["series"]["t"]) == 6 and len(temperature["markers"]) == 1  # the answer
        assert table.locator("tbody tr").count() == 7
        assert table.locator("tbody tr").first.locator("td").nth(2).inner_text() == "37,1"
        table.screenshot(path=str(SCREENSHOTS / "record-chart-table.png"))
        context.close()
    # No CSP violation, no script error (plotly.js's own <style> is declined, not blocked).
    assert problems == [], "\n".join(problems)
