-- name: heartbeat
-- The reactor is alive, and whether its listener hears: `prometheus check` reports one
-- whose heartbeat stopped, or whose listener cannot hear.
INSERT INTO reactor_heartbeats (reactor_id, host, pid, listener_hears, listener_problem)
VALUES (:reactor_id, :host, :pid, :listener_hears, :listener_problem)
ON CONFLICT (reactor_id) DO UPDATE
SET last_seen_at = now(), stopped_at = NULL,
    listener_hears = EXCLUDED.listener_hears, listener_problem = EXCLUDED.listener_problem;

-- name: heartbeat_stopped
UPDATE reactor_heartbeats SET last_seen_at = now(), stopped_at = now()
WHERE reactor_id = :reactor_id;

-- name: calendar_regions
-- Regions the reactor creates runs for: those that require at least one dataset.
SELECT DISTINCT region FROM region_datasets ORDER BY region;

-- name: database_now
-- Calendar decisions use the database's clock, like backoff and stuck checks.
SELECT now();

-- name: listener_in_recovery
-- Asked by the listener on every connect: a standby cannot LISTEN, and its listener would
-- hear nothing while saying it is connected.
SELECT pg_is_in_recovery();

-- name: listener_channels
-- What the listener's session LISTENs on, after its LISTENs: one that did not take (a
-- transaction pooler may accept LISTEN and drop it) is missing here.
SELECT pg_listening_channels();

-- name: listener_ping
-- A silent listener's probe of its link: answered at once by any live backend, so no
-- answer within the ping's deadline means a dead or blackholed connection.
SELECT 1;

-- name: listener_probe
-- A reactor's proof that its listener hears: a notification on the listener's own
-- channel, sent like every real one (by another session's commit, and skipped like every
-- real one while the server's NOTIFY queue is past its limit). True if it was sent.
SELECT prometheus_notify(:channel, :payload);
