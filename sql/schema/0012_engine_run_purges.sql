-- Retention on purpose: every purge of old runs is recorded here, and this record
-- survives the purge (it references no run). Append-only, like engine_run_events.

CREATE TABLE engine_run_purges (
    purge_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text        NOT NULL CHECK (btrim(actor) <> ''),
    reason        text        NOT NULL CHECK (btrim(reason) <> ''),
    cutoff        date        NOT NULL,  -- terminal runs with as_of_date < cutoff
    runs_purged   bigint      NOT NULL CHECK (runs_purged >= 0),
    events_purged bigint      NOT NULL CHECK (events_purged >= 0)
);
