"""The ward dashboard: what nurses and physicians see.

A FastAPI application (`dashboard.app.create_app`) that serves the ward overview,
patient records and alert acknowledgement, and pushes live changes to browsers over
websockets. Ingest announces changes with `pg_notify('hemma_events', ...)`; one
dedicated connection LISTENs (`dashboard.live`) and fans them out per ward.

Every read of patient data by staff is written to `access_log` (Patientdatalagen
2008:355, 4 kap.), see `dashboard.access_log`.
"""
