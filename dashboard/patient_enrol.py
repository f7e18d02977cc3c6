"""The patient app's enrolment (the one-time link) and Vem har läst screens (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
