-- Time-bucketed aggregates of observations for the record's charts (issue 11, "see the trajectory";
-- storage/rollups.py). Ingest adds each batch's inserted readings in the statement that inserts them,
-- so a redelivered message (which inserts nothing) never counts twice. With TimescaleDB, continuous
-- aggregates of the same shape are read instead (storage.db.enable_timescaledb).
--
-- width_s: 300 (5 min), 3600 (1 h), 86400 (1 UTC day). bucket: its start (date_bin from the epoch).
-- The mean is sum_value / n; last_value is the value of the newest reading (last_time);
-- flagged: some reading of the bucket carried a quality flag (doubtful, clock not set, …).
CREATE TABLE IF NOT EXISTS observation_rollups (
    patient_id  uuid NOT NULL,
    vital       text NOT NULL,
    width_s     integer NOT NULL CHECK (width_s IN (300, 3600, 86400)),
    bucket      timestamptz NOT NULL,
    n           bigint NOT NULL CHECK (n > 0),
    min_value   double precision NOT NULL,
    max_value   double precision NOT NULL,
    sum_value   double precision NOT NULL,
    last_time   timestamptz NOT NULL,
    last_value  double precision NOT NULL,
    flagged     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (patient_id, vital, width_s, bucket)
);

-- The history stored before this migration (`hemma rollups rebuild` does the same later).
INSERT INTO observation_rollups
    (patient_id, vital, width_s, bucket, n, min_value, max_value, sum_value, last_time, last_value, flagged)
SELECT o.patient_id, o.vital, w.width_s,
       date_bin(make_interval(secs => w.width_s), o.time, timestamptz 'epoch'),
       count(*), min(o.value), max(o.value), sum(o.value), max(o.time),
       (array_agg(o.value ORDER BY o.time DESC))[1], bool_or(cardinality(o.quality) > 0)
FROM observations o CROSS JOIN unnest(ARRAY[300, 3600, 86400]) AS w(width_s)
GROUP BY 1, 2, 3, 4
ON CONFLICT DO NOTHING;

SELECT hemma_grant_to_services(ARRAY['observation_rollups']);
