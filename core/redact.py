"""What a log line may say about an unexpected exception: its type and where it happened, never its text.

An exception's message can carry patient data: psycopg's DETAIL quotes the failing row (a name, a
personal number, an alert's text with its value), a ValueError may repeat the input. Services log
`summary(exc)` for failures they survive, so the log names the bug without the data.
"""

from __future__ import annotations

_OWN_PACKAGES = ("hemma.", "dashboard.", "ingest.", "alerts.", "gateway.", "device_profiles.")


def where(exc: BaseException) -> str:
    """'psycopg.cursor:117 via ingest.engine:72': the innermost frame, and the innermost of Hemma's own
    when that is another."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_globals.get("__name__", "?"), tb.tb_lineno))
        tb = tb.tb_next
    if not frames:
        return "?"
    inner = f"{frames[-1][0]}:{frames[-1][1]}"
    own = next((f"{m}:{n}" for m, n in reversed(frames) if m.startswith(_OWN_PACKAGES)), None)
    return inner if own in (None, inner) else f"{inner} via {own}"


def summary(exc: BaseException) -> str:
    """'UniqueViolation (SQLSTATE 23505) at psycopg.cursor:117 via paging.escalator:212'."""
    sqlstate = getattr(exc, "sqlstate", None)
    state = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) else ""
    return f"{type(exc).__name__}{state} at {where(exc)}"
