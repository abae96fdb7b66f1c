"""A monitor handler for the fault suite: counts how often each change is handled.

Named in MONITOR_HANDLERS as `tests.support.fault_handler:record`. It takes the
monitor's cursor, so its row commits with the change's `processed` mark or
not at all; a count above one means the monitor handled a change twice.
"""

TABLE = """
CREATE TABLE IF NOT EXISTS fault_handled (
    change_id bigint PRIMARY KEY,
    times integer NOT NULL,
    handled_by integer NOT NULL  -- the monitor's backend pid: which appliance handled it
)
"""


def record(change, cursor) -> None:
    cursor.execute(
        "INSERT INTO fault_handled (change_id, times, handled_by) VALUES (%s, 1, pg_backend_pid()) "
        "ON CONFLICT (change_id) DO UPDATE SET times = fault_handled.times + 1",
        (change.id,),
    )
