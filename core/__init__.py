"""Hemma's shared vocabulary, free of I/O: vital signs and their codes (`core.vitals`), the wire
contract between gateway and ingest (`core.contract`), settings (`core.settings`), the typed
events the dashboard is told about (`core.events`) and what may be logged (`core.redact`).

Every other package may import this one; it imports none of them (tests/test_layers.py).
"""
