"""The patient app's questionnaires screens (issue 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
