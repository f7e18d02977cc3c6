"""The end-of-stay summary as a printable document (issue 12): one HTML page per stay, A4 in print, with a
small server-drawn SVG line of each vital's daily means; no script. Rendered once, here, for the ward's
page (`/patients/{id}/vardtid`, dashboard.stay_summary), the partner's (`/partner/patients/{id}/vardtid`,
dashboard.partner_summary) and `hemma patient summary --html FILE`; and the same summary as a FHIR
document to download (`.../vardtid.json`, fhir_api.stay_document), which the page links to.

The page served by the dashboard links its stylesheet (`/static/stay_summary.css`; the CSP allows no
inline style); the file the CLI writes carries the same stylesheet inside, so it prints from a disk.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from care import stay_summary_text as text
from care.enrolment import OUTCOMES_SV
from care.stay_summary import SECTIONS, StaySummary
from fhir_api.api import FHIR_JSON
from fhir_api.stay_document import StayDocumentFacts, bundle_json, stay_bundle

_HERE = Path(__file__).resolve().parent
STYLESHEET = _HERE / "static" / "stay_summary.css"
TEMPLATE = "stay_summary.html"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        t=text,
        outcomes=OUTCOMES_SV,
        sections={s.key: s for s in SECTIONS},
    )
    return env


def render_document(
    summary: StaySummary,
    *,
    zone: ZoneInfo,
    printed_at: datetime,
    reader: str,
    back_link: str | None = None,
    json_link: str | None = None,
    embed_stylesheet: bool = False,
) -> str:
    """The document's HTML. `reader` is who printed it (shown in the footer, as a printed record says
    who took it out); `back_link` the page to return to and `json_link` the FHIR document's address
    (neither printed)."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            s=summary,
            zone=zone,
            printed_at=printed_at,
            reader=reader,
            back_link=back_link,
            json_link=json_link,
            stylesheet=STYLESHEET.read_text(encoding="utf-8") if embed_stylesheet else None,
        )
    )


def summary_page(request: Request, summary: StaySummary, *, reader: str, base_path: str) -> HTMLResponse:
    """The printable page of one entry point: `base_path` is the record the page leads back to
    (`/patients/{id}` for staff, `/partner/patients/{id}` for a partner), the JSON beside it."""
    html = render_document(
        summary,
        zone=request.app.state.settings.site_zone(),
        printed_at=datetime.now(UTC),
        reader=reader,
        back_link=base_path,
        json_link=f"{base_path}/vardtid.json",
    )
    return HTMLResponse(html)  # the app sends every page no-store (dashboard.app)


def fhir_document_response(facts: StayDocumentFacts, *, zone: ZoneInfo) -> Response:
    """The summary as a FHIR document Bundle to download (`application/fhir+json`)."""
    bundle = stay_bundle(facts, at=datetime.now(UTC), zone=zone)
    return Response(
        bundle_json(bundle),
        media_type=FHIR_JSON,
        headers={"Content-Disposition": 'attachment; filename="sammanfattning-av-vardtiden.json"'},
    )
