"""Counters for one dashboard application, exposed at GET /metrics in Prometheus text format.

They live on `app.state.metrics` (one instance per app), never at module level, so two
apps in one process (tests) do not share numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from alerts.lifecycle import EventKind

_PREFIX = "hemma_dashboard_"


@dataclass
class DashboardMetrics:
    logins: int = 0
    failed_logins: int = 0
    login_lockouts: int = 0
    password_changes: int = 0
    websocket_clients: int = 0
    websocket_clients_dropped: int = 0
    events_received: Counter[str] = field(default_factory=Counter)
    events_rejected: int = 0
    flushes: int = 0
    # Websocket snapshots sent from their ward page's own read a moment before (live.PagePrimer).
    snapshots_from_page: int = 0
    pushes: int = 0
    acknowledgements: int = 0
    snoozes: int = 0
    resolutions: int = 0
    manual_observations: int = 0
    # Care-team orders from the record, by access-log action (set_alert_limit, order_spo2_scale, ...).
    care_orders: Counter[str] = field(default_factory=Counter)
    # Refused staff actions by (action, HTTP status): acknowledge, snooze, resolve, observation, and the
    # care-team orders by their access-log action.
    action_errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    csrf_rejections: int = 0
    access_log_rows: int = 0
    listener_reconnects: int = 0
    # Requests answered by the last-resort handler (dashboard.app.LastResort): each one is a bug.
    unexpected_errors: int = 0

    def staff_action(self, kind: EventKind) -> None:
        """One acknowledge, snooze or staff resolve, and its access-log row."""
        if kind is EventKind.ACKNOWLEDGED:
            self.acknowledgements += 1
        elif kind is EventKind.SNOOZED:
            self.snoozes += 1
        elif kind is EventKind.RESOLVED:
            self.resolutions += 1
        self.access_log_rows += 1

    def render(self) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
            lines.append(f"# HELP {_PREFIX}{name} {help_text}")
            lines.append(f"# TYPE {_PREFIX}{name} {kind}")
            lines.extend(f"{_PREFIX}{name}{labels} {value}" for labels, value in samples)

        metric("logins_total", "counter", "Successful staff logins.", [("", self.logins)])
        metric(
            "failed_logins_total",
            "counter",
            "Refused login attempts (wrong, disabled, locked).",
            [("", self.failed_logins)],
        )
        metric(
            "login_lockouts_total",
            "counter",
            "Accounts or source addresses locked by the login brake after repeated failures.",
            [("", self.login_lockouts)],
        )
        metric(
            "password_changes_total",
            "counter",
            "Staff who changed their own password on the dashboard.",
            [("", self.password_changes)],
        )
        metric(
            "websocket_clients",
            "gauge",
            "Connected live-overview websockets.",
            [("", self.websocket_clients)],
        )
        metric(
            "websocket_clients_dropped_total",
            "counter",
            "Websockets closed because they could not keep up (they reconnect for a fresh snapshot).",
            [("", self.websocket_clients_dropped)],
        )
        kinds = sorted(set(self.events_received) | {"vitals", "alerts", "gateway"})
        metric(
            "events_received_total",
            "counter",
            "Notifications received on hemma_events, by kind.",
            [(f'{{kind="{kind}"}}', self.events_received[kind]) for kind in kinds],
        )
        metric(
            "events_rejected_total",
            "counter",
            "Malformed notifications ignored.",
            [("", self.events_rejected)],
        )
        metric(
            "flushes_total",
            "counter",
            "Coalesced rounds of re-querying changed patients.",
            [("", self.flushes)],
        )
        metric(
            "snapshots_from_page_total",
            "counter",
            "Websocket snapshots sent from their ward page's own read a moment before (no second read).",
            [("", self.snapshots_from_page)],
        )
        metric("pushes_total", "counter", "Messages sent to websocket clients.", [("", self.pushes)])
        metric(
            "acknowledgements_total",
            "counter",
            "Alerts acknowledged by staff.",
            [("", self.acknowledgements)],
        )
        metric("snoozes_total", "counter", "Alerts snoozed by staff.", [("", self.snoozes)])
        metric("resolutions_total", "counter", "Alerts ended by staff.", [("", self.resolutions)])
        metric(
            "manual_observations_total",
            "counter",
            "Observations entered by staff on the patient record.",
            [("", self.manual_observations)],
        )
        metric(
            "care_orders_total",
            "counter",
            "Care-team orders entered on the patient record (alert limits, SpO2 scale, monitoring plan).",
            [(f'{{action="{action}"}}', count) for action, count in sorted(self.care_orders.items())],
        )
        metric(
            "action_errors_total",
            "counter",
            "Refused staff actions, by action and HTTP status.",
            [
                (f'{{action="{action}",status="{status}"}}', count)
                for (action, status), count in sorted(self.action_errors.items())
            ],
        )
        metric(
            "csrf_rejections_total",
            "counter",
            "State-changing requests refused for a missing or wrong CSRF token, or from another origin.",
            [("", self.csrf_rejections)],
        )
        metric(
            "access_log_rows_total", "counter", "Rows written to access_log.", [("", self.access_log_rows)]
        )
        metric(
            "listener_reconnects_total",
            "counter",
            "Times the LISTEN connection was re-established.",
            [("", self.listener_reconnects)],
        )
        metric(
            "unexpected_errors_total",
            "counter",
            "Requests that failed unexpectedly and were answered with a generic 500 (each one is a bug).",
            [("", self.unexpected_errors)],
        )
        return "\n".join(lines) + "\n"
