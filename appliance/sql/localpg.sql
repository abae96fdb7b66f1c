-- The private PostgreSQL of trials, tests and benchmarks (appliance/localpg.py).

-- name: database_exists
-- Whether a database of this name exists.
SELECT 1 FROM pg_database WHERE datname = %(name)s;

-- name: create_database
-- A new empty database ({name} is filled in as an identifier: it is not a value).
CREATE DATABASE {name};
