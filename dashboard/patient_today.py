"""The patient app's Idag and Mina värden screens (issue 10). Filled in by the patient-today work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
