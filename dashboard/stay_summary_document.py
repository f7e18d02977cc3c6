"""The end-of-stay summary as a printable document (issue 12): one HTML page per stay, A4 in print, with a
small server-drawn SVG line of each vital's daily means; no script. Rendered once, here, for the ward's
page (`/patients/{id}/vardtid`, dashboard.stay_summary), the partner's (`/partner/patients/{id}/vardtid`,
dashboard.partner_summary) and `hemma patient summary --html FILE`.

The page served by the dashboard links its stylesheet (`/static/stay_summary.css`; the CSP allows no
inline style); the file the CLI writes carries the same stylesheet inside, so it prints from a disk.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from care import stay_summary_text as text
from care.enrolment import OUTCOMES_SV
from care.stay_summary import SECTIONS, StaySummary

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
    embed_stylesheet: bool = False,
) -> str:
    """The document's HTML. `reader` is who printed it (shown in the footer, as a printed record says
    who took it out); `back_link` the page to return to (not printed)."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            s=summary,
            zone=zone,
            printed_at=printed_at,
            reader=reader,
            back_link=back_link,
            stylesheet=STYLESHEET.read_text(encoding="utf-8") if embed_stylesheet else None,
        )
    )
