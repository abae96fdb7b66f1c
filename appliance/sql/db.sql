-- The database seam's own statements (appliance/db.py).

-- name: ping
-- A round trip: the connection is alive.
SELECT 1;

-- name: savepoint
-- The start of a block whose failure undoes only its own statements.
SAVEPOINT appliance_block;

-- name: release_savepoint
-- The block succeeded: its statements belong to the transaction.
RELEASE SAVEPOINT appliance_block;

-- name: rollback_to_savepoint
-- The block failed: undo its statements; the transaction goes on.
ROLLBACK TO SAVEPOINT appliance_block;

-- name: try_schema_lock
-- Take the schema lock (a session advisory lock) if it is free; whether it was taken.
SELECT pg_try_advisory_lock(%(key)s);

-- name: schema_lock
-- Wait for the schema lock.
SELECT pg_advisory_lock(%(key)s);

-- name: schema_unlock
-- Give the schema lock back.
SELECT pg_advisory_unlock(%(key)s);

-- name: schema_xact_lock
-- The schema lock until the end of this transaction (creating the library's tables).
SELECT pg_advisory_xact_lock(%(key)s);

-- name: server_version_num
-- The server's version as a number (150004 for 15.4).
SHOW server_version_num;
