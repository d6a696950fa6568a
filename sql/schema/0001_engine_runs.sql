-- The run table, its audit trail and the reactors' heartbeats.
-- One row per (as_of_date, region); the phase column is the state machine.

CREATE TABLE engine_runs (
    run_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of_date       date        NOT NULL,
    region           text        NOT NULL CHECK (region <> ''),
    phase            text        NOT NULL DEFAULT 'WAITING_FOR_DATA'
                     CHECK (phase IN ('WAITING_FOR_DATA', 'DATA_READY', 'SIGNALS_DONE',
                                      'UNIVERSES_DONE', 'COMPLETED', 'FAILED')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       text,
    next_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    phase_changed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (as_of_date, region)
);

-- The sweep asks "which workable runs are due?" every interval: this partial
-- index holds only runs that have work, so its cost follows them, not history.
CREATE INDEX engine_runs_due_idx
    ON engine_runs ((coalesce(next_attempt_at, '-infinity'::timestamptz)), run_id)
    WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE');

-- `check` and `runs list` look at active runs by phase and age.
CREATE INDEX engine_runs_active_idx
    ON engine_runs (phase, phase_changed_at)
    WHERE phase NOT IN ('COMPLETED', 'FAILED');

CREATE TABLE engine_run_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     bigint      NOT NULL REFERENCES engine_runs (run_id) ON DELETE CASCADE,
    kind       text        NOT NULL
               CHECK (kind IN ('transition', 'attempt_failed', 'batch_regressed')),
    from_phase text,
    to_phase   text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX engine_run_events_run_idx ON engine_run_events (run_id, event_id);
CREATE INDEX engine_run_events_failed_idx ON engine_run_events (at) WHERE to_phase = 'FAILED';

CREATE TABLE reactor_heartbeats (
    reactor_id   text PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
