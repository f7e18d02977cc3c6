"""SQL shared by every writer and reader of manual observations and of NEWS2's inputs.

A respiration rate a person counts is stored twice: in `manual_observations` (with who and how) and
as an ordinary `observations` row, so it is charted and thresholded like a device's reading. The
dashboard (async) and `hemma observe` (sync) run these same statements, so the two paths cannot drift.
"""

from __future__ import annotations

MANUAL_GATEWAY_ID = "manual"
MANUAL_CHARACTERISTIC = "manual"

# Parameters: time, patient_id, value, measurement_id, device_id ("staff:<username>" or
# "patient"), received_at.
INSERT_RR_OBSERVATION = (
    "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id, gateway_id,"
    f" device_id, characteristic, received_at) VALUES (%s, %s, 'respiratory_rate', %s, '/min', '{{}}', %s,"
    f" '{MANUAL_GATEWAY_ID}', %s, '{MANUAL_CHARACTERISTIC}', %s)"
)
# Parameters: patient_id, time, value. Only a newer value replaces the latest (the rule ingest follows).
UPSERT_RR_LATEST = (
    "INSERT INTO latest_vitals AS l (patient_id, vital, time, value, unit, quality)"
    " VALUES (%s, 'respiratory_rate', %s, %s, '/min', '{}') ON CONFLICT (patient_id, vital) DO UPDATE"
    " SET time = EXCLUDED.time, value = EXCLUDED.value, unit = EXCLUDED.unit, quality = EXCLUDED.quality"
    " WHERE l.time <= EXCLUDED.time"
)

NEWS2_DEVICE_VITALS = (
    "respiratory_rate",
    "spo2",
    "systolic_bp",
    "pulse_rate",
    "heart_rate",
    "body_temperature",
)

# The newest trustworthy value of each NEWS2 vital per patient (a reading with a doubtful quality
# flag never scores). Parameters: patients (uuid[]), vitals (text[]), until (timestamptz), doubtful
# (text[]: alerts.thresholds.DOUBTFUL_QUALITY).
NEWS2_LATEST_TRUSTED = (
    "SELECT t.patient_id, v.vital, o.value, o.time"
    " FROM unnest(%(patients)s::uuid[]) AS t(patient_id) CROSS JOIN unnest(%(vitals)s::text[]) AS v(vital)"
    " CROSS JOIN LATERAL (SELECT value, time FROM observations WHERE patient_id = t.patient_id"
    "   AND vital = v.vital AND time <= %(until)s AND NOT quality && %(doubtful)s"
    "   ORDER BY time DESC LIMIT 1) o"
)
