-- name: database_exists
-- Whether the server has a database of that name (the demo asks before it creates one).
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :name);
