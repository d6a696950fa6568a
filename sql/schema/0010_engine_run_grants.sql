-- What an audited function allows itself, for the length of one of its statements, in
-- its own transaction: prometheus_force_phase registers ('force', run, phase) before its
-- UPDATE and removes it after, and the transition guard honours a grant only if this
-- very transaction wrote it (txid). A row never outlives its transaction, so the table
-- is empty to everyone else, always. See sql/triggers/0011_audited_force.sql for what
-- this protects against, and what it does not.

CREATE TABLE engine_run_grants (
    txid     xid8   NOT NULL DEFAULT pg_current_xact_id(),
    kind     text   NOT NULL,
    run_id   bigint NOT NULL,
    to_phase text,
    PRIMARY KEY (txid, kind, run_id)
);

-- Only the owner (and so only the SECURITY DEFINER functions) may read or write it.
REVOKE ALL ON engine_run_grants FROM PUBLIC;
