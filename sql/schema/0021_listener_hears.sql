-- Whether each reactor's listener hears: proven by a notification it sent itself through
-- a work connection (NULL: not proven yet). A live reactor whose listener cannot hear
-- (a transaction pooler, a standby) polls instead of listening; `prometheus check` and
-- the console say so, with the reactor's own reason.

ALTER TABLE reactor_heartbeats
    ADD COLUMN listener_hears boolean,
    ADD COLUMN listener_problem text;
