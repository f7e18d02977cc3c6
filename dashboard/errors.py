"""Errors the dashboard raises between its layers. Messages carry ids only, never patient data.

Errors a member of staff can cause with an action (snooze, resolve, record an observation) carry
`status` (the HTTP status the API answers with) and `message` (Swedish, shown to staff as it is).
"""

from __future__ import annotations


class DashboardError(Exception):
    """Base class for dashboard errors."""


class ActionError(DashboardError):
    """A refused staff action: `status` is the HTTP status, `message` the Swedish text for staff."""

    status = 400

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.message = message


class AlertNotFound(ActionError):
    status = 404

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist", "Larmet finns inte")
        self.alert_id = alert_id


class WardForbidden(ActionError):
    """The staff member has no access to the ward the data belongs to."""

    status = 403

    def __init__(self, ward_id: str) -> None:
        super().__init__(f"no access to ward {ward_id}", "Behörighet saknas för avdelningen")
        self.ward_id = ward_id


_STATE_MESSAGES = {
    "acknowledged": "Larmet är redan kvitterat",
    "resolved": "Larmet är redan avslutat",
    "pending": "Larmet är inte aktivt",
    "open": "Larmet är inte kvitterat",
}


class AlertStateConflict(ActionError):
    """The alert is not in a state that allows the action; someone else may have been quicker."""

    status = 409

    def __init__(self, alert_id: int, state: str, action: str) -> None:
        super().__init__(
            f"alert {alert_id} is {state}; cannot {action}",
            _STATE_MESSAGES.get(state, "Larmet kan inte ändras"),
        )
        self.alert_id = alert_id
        self.state = state


class AlertNotAcknowledgeable(AlertStateConflict):
    """Only an open alert can be acknowledged."""

    def __init__(self, alert_id: int, state: str) -> None:
        super().__init__(alert_id, state, "acknowledge")


class InvalidInput(ActionError):
    """The request body does not say what the action needs (HTTP 422). `field` names the offending field."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"invalid {field or 'body'}", message)
        self.field = field


class BodyTooLarge(ActionError):
    status = 413

    def __init__(self) -> None:
        super().__init__("request body too large", "Förfrågan är för stor")


class NotFound(ActionError):
    """What the request names cannot exist (a malformed id): answered as an unknown one would be."""

    status = 404

    def __init__(self, message: str) -> None:
        super().__init__("not found", message)


class PatientNotFound(ActionError):
    status = 404

    def __init__(self, patient_id: object) -> None:
        super().__init__(f"patient {patient_id} does not exist", "Patienten finns inte")


class PatientDischarged(ActionError):
    status = 409

    def __init__(self, patient_id: object) -> None:
        super().__init__(f"patient {patient_id} is discharged", "Patienten är utskriven")


class RoleForbidden(ActionError):
    """The action belongs to clinical roles (nurse, physician) only."""

    status = 403

    def __init__(self, role: str, message: str) -> None:
        super().__init__(f"role {role} may not do this", message)


class OrderRefused(ActionError):
    """A care command refused a care-team order (alert limit, SpO2 scale, monitoring plan) for a reason
    other than the input: what should change is gone (404), already changed (409) or not the staff
    member's to change (403). The status is per instance; `message` is the Swedish text."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.status = status
