"""The accessibility audit of the patient screens: axe-core (shipped inside axe-playwright-python, never
copied here) run in a real Chromium page, and the checks axe does not make for an old, ill reader:
touch targets at least 56 px tall and no sideways scrolling at 200 % zoom."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe

SERIOUS = frozenset({"serious", "critical"})
MIN_TARGET_PX = 56
# Everything a finger or a switch can operate on a patient screen.
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex='0'], [role=button]"
)

_AXE = Axe()


def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practice)."""
    found: list[dict[str, Any]] = _AXE.run(page).response["violations"]
    return found


def serious(found: list[dict[str, Any]]) -> list[str]:
    """One line per serious or critical violation: rule id, impact and the elements it names."""
    lines = []
    for v in found:
        if v.get("impact") in SERIOUS:
            targets = "; ".join(" ".join(map(str, n.get("target", []))) for n in v.get("nodes", []))
            lines.append(f"{v['id']} ({v['impact']}): {targets}")
    return lines


def assert_no_serious(page: Any, name: str) -> list[dict[str, Any]]:
    """Fail listing every serious/critical violation on `name`; returns all violations (for figures)."""
    found = violations(page)
    report = os.environ.get("HEMMA_AXE_REPORT")  # a file to append every screen's findings to
    if report:
        with Path(report).open("a", encoding="utf-8") as out:
            kinds = ", ".join(f"{v['id']} ({v.get('impact')})" for v in found) or "none"
            out.write(f"{name}: {len(found)} violation(s): {kinds}\n")
    bad = serious(found)
    assert not bad, f"axe-core on {name}:\n  " + "\n  ".join(bad)
    return found


def small_targets(page: Any) -> list[str]:
    """Visible interactive elements less than MIN_TARGET_PX tall (the skip link counts when shown). A
    radio or checkbox inside its <label> is measured by the label: tapping the label is tapping it."""
    found: list[str] = page.evaluate(
        """([selector, min]) => Array.from(document.querySelectorAll(selector))
            .filter(el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
                    && r.right > 0 && r.left < innerWidth; })
            .filter(el => { const target = (el.matches('input[type=radio], input[type=checkbox]')
                                            && el.closest('label')) || el;
                return target.getBoundingClientRect().height < min; })
            .map(el => `${el.tagName.toLowerCase()}`
                       + ` "${(el.textContent || el.value || '').trim().slice(0, 40)}"`
                       + ` ${Math.round(el.getBoundingClientRect().height)} px`)""",
        [INTERACTIVE, MIN_TARGET_PX],
    )
    return found


def overflows_sideways(page: Any) -> list[str]:
    """The elements that run past the right edge of the viewport (none: no sideways scrolling)."""
    found: list[str] = page.evaluate(
        """() => { const edge = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= edge) return [];
            return Array.from(document.querySelectorAll('body *'))
              .filter(el => el.getBoundingClientRect().right > edge + 0.5)
              .filter(el => !Array.from(el.children).some(c => c.getBoundingClientRect().right > edge + 0.5))
              .map(el => `${el.tagName.toLowerCase()}.${el.className}`
                         + ` "${(el.textContent || '').trim().slice(0, 30)}"`
                         + ` ${Math.round(el.getBoundingClientRect().right - edge)} px`); }"""
    )
    return found


def screenshot(page: Any, name: str) -> Path | None:
    """Save a full-page screenshot (or of one element, given a locator) into $HEMMA_SCREENSHOTS, when
    set, for a person to look at."""
    folder = os.environ.get("HEMMA_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(page, "goto"):
        page.screenshot(path=str(path), full_page=True)
    else:  # a Locator
        page.screenshot(path=str(path))
    return path
