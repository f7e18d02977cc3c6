"""Errors the dashboard raises between its layers. Messages carry ids only, never patient data."""

from __future__ import annotations


class DashboardError(Exception):
    """Base class for dashboard errors."""


class AlertNotFound(DashboardError):
    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist")
        self.alert_id = alert_id


class WardForbidden(DashboardError):
    """The staff member has no access to the ward the data belongs to."""

    def __init__(self, ward_id: str) -> None:
        super().__init__(f"no access to ward {ward_id}")
        self.ward_id = ward_id


class AlertNotAcknowledgeable(DashboardError):
    """Only an open alert can be acknowledged; someone else may have been quicker."""

    def __init__(self, alert_id: int, state: str) -> None:
        super().__init__(f"alert {alert_id} is {state}, not open")
        self.alert_id = alert_id
        self.state = state


class EventRejected(DashboardError):
    """A NOTIFY payload on hemma_events that does not follow the event format. `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
