"""The change monitor: handles every row the init-db triggers write to change_notifications."""

from appliance.monitor.handlers import Change, Webhook, load_handler, log_line
from appliance.monitor.loop import Monitor
from appliance.monitor.retention import delete_old_changes

__all__ = ["Change", "Monitor", "Webhook", "delete_old_changes", "load_handler", "log_line"]
