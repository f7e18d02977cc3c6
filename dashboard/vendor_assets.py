"""Third-party browser libraries, served by Hemma from their installed Python packages (hospital
networks are closed: no CDN; and no third-party JS is copied into this repository).

plotly.js (the record's charts, dashboard/static/record_charts.js) ships in the `plotly` wheel as
plotly/package_data/plotly.min.js. Its URL carries the package's version, so browsers may keep it for a
year (`immutable`, set in dashboard.app.SecurityHeaders for VENDOR_PREFIX); an upgrade is a new URL.

Under the strict CSP (`style-src 'self'`) plotly.js must not inject its <style> elements (the browser
blocks them and reports a violation): the page carries `<link id="plotly.js-style-global"
class="no-inline-styles">` (plotly.js skips its own rules when that element has that class), and an
empty element with the id of each bundled stylesheet plotly.js adds once per page (its map library's,
guarded by `document.getElementById(<id>)`; `plotly_style_guards` finds them in the installed file, so
an upgrade brings its own). dashboard/static/record_charts.css styles the charts instead.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

VENDOR_PREFIX = "/vendor/"
router = APIRouter(include_in_schema=False)


@cache
def plotly_version() -> str:
    return metadata.version("plotly")


def plotly_js_url() -> str:
    return f"{VENDOR_PREFIX}plotly-{plotly_version()}.min.js"


@cache
def _plotly_js_path() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


# plotly.js's bundled stylesheets:
# `if(!document.getElementById("<id>")){var e=document.createElement("style")`.
_STYLE_GUARD = re.compile(
    rb'getElementById\("([0-9a-f]{16,128})"\)\)\{var [A-Za-z_$]+=document\.createElement\("style"\)'
)


@cache
def plotly_style_guards() -> tuple[str, ...]:
    """The ids whose presence keeps plotly.js from injecting a bundled <style> (see the module's doc)."""
    return tuple(m.decode() for m in _STYLE_GUARD.findall(_plotly_js_path().read_bytes()))


@router.get(VENDOR_PREFIX + "plotly-{version}.min.js")
async def plotly_js(version: str) -> FileResponse:
    if version != plotly_version():
        raise HTTPException(status_code=404, detail="Finns inte")
    return FileResponse(_plotly_js_path(), media_type="text/javascript; charset=utf-8")
