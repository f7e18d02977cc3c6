"""The patient record's questionnaires section (issue 10)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from dashboard.model import StaffUser

if TYPE_CHECKING:
    import psycopg


async def load(conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID) -> Any:
    return None
