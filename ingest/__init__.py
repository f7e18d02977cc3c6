"""Ingest: MQTT -> validation -> PostgreSQL (COPY, idempotent) -> alert engine -> acknowledgement."""
