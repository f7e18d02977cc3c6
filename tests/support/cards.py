"""Reading the live websocket's card fragments back into the facts a test asserts on.

The dashboard pushes rendered HTML (dashboard.live_state); these helpers parse a card as staff see it
(names, values, kit status, alerts, the NEWS2 chip) with the standard library's HTML parser, so that
tests assert on what the page shows, not on a second data format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

__all__ = ["Node", "card_facts", "cards_of", "parse_html"]

_PRIORITY_CLASSES = frozenset({"alert-high", "alert-medium", "alert-low"})
_VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "source", "wbr"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def all(self, cls: str) -> list[Node]:
        """Every descendant with the class `cls`, in document order."""
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if cls in child.classes:
                    found.append(child)
                found += child.all(cls)
        return found

    def one(self, cls: str) -> Node | None:
        matches = self.all(cls)
        return matches[0] if matches else None


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def _squash(text: str) -> str:
    return " ".join(text.split())


def card_facts(html: str) -> dict[str, Any]:
    """One `<article class="patient">` as the facts staff read on it."""
    (article,) = [c for c in parse_html(html).children if isinstance(c, Node)]
    name = article.one("patient-name")
    gateway = article.one("gateway")
    chip = article.one("news2-chip")
    vitals = [
        {
            "vital": tile.attrs["data-vital"],
            "label": _squash(tile.one("vital-label").text),  # type: ignore[union-attr]
            "text": _squash(tile.one("vital-value").text),  # type: ignore[union-attr]
            "unit": _squash(tile.one("vital-unit").text),  # type: ignore[union-attr]
        }
        for tile in article.all("vital")
    ]
    alerts = []
    for item in article.all("alert"):
        state = next(c.removeprefix("state-") for c in item.classes if c.startswith("state-"))
        priority = next(c.removeprefix("alert-") for c in item.classes if c in _PRIORITY_CLASSES)
        meta = item.one("alert-meta")
        # "13:30 · Kvitterat av Sara Sjöström <time>13:10</time>": the words between, without the times.
        words = _squash("".join(c for c in meta.children if isinstance(c, str))) if meta else ""
        by = words.split("Kvitterat av ", 1)[1].strip() if "Kvitterat av " in words else None
        message = _squash(item.one("alert-message").text)  # type: ignore[union-attr]
        alerts.append(
            {
                "id": int(item.attrs["data-alert-id"]),
                "state": state,
                "priority": priority,
                "message": message,
                "acknowledged_by": by,
            }
        )
    news2 = None
    if chip is not None:
        marker = chip.one("news2-marker")
        news2 = {
            "text": _squash(chip.one("news2-score").text),  # type: ignore[union-attr]
            "marker": _squash(marker.text) if marker else None,
            "title": chip.attrs["title"],
            "band": chip.attrs["data-news2-band"],
            "complete": "news2-incomplete" not in chip.classes,
        }
    return {
        "id": article.attrs["data-patient-id"],
        "name": _squash(name.text) if name else None,
        "gateway": {"status": next(c[3:] for c in gateway.classes if c.startswith("gw-"))}
        if gateway
        else None,
        "vitals": vitals,
        "alerts": alerts,
        "news2": news2,
    }


def cards_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The cards of a snapshot or delta message, as facts."""
    return [card_facts(html) for html in message["cards"]]
