"""Snakemake logger plugin that records every run in the workflow-tracking appliance.

    snakemake --logger appliance --logger-appliance-url URL --logger-appliance-token TOKEN

Every setting can also come from an environment variable (the token best
does: SNAKEMAKE_LOGGER_APPLIANCE_TOKEN keeps it out of shell history).
"""

import atexit
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from snakemake_logger_plugin_appliance.live import LiveJobs
from snakemake_logger_plugin_appliance.mapping import Metadata, RunMapper
from snakemake_logger_plugin_appliance.sender import Sender, report
from snakemake_logger_plugin_appliance.spool import default_root

__all__ = ["LogHandler", "LogHandlerSettings"]


def _setting(help: str, default=None, **metadata):
    return field(default=default, metadata={"help": help, "env_var": True, **metadata})


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    url: Optional[str] = _setting("The appliance's address, such as http://appliance.example.org:8000.",
                                  required=True)
    token: Optional[str] = _setting(
        "The appliance's ingest token. Prefer the environment variable SNAKEMAKE_LOGGER_APPLIANCE_TOKEN: "
        "it stays out of shell history.", required=True)
    name: Optional[str] = _setting("The run's name (default: the name of the workflow's directory).")
    user: Optional[str] = _setting("The user to record (default: the one Snakemake reports).")
    group: Optional[str] = _setting("The group (team, lab, project) to record.")
    tags: Optional[str] = _setting("Tags to record, separated by commas.")
    heartbeat: Optional[float] = _setting(
        "Seconds of silence after which a heartbeat tells the appliance the run is alive.", 60.0, type=float)
    exit_wait: Optional[float] = _setting(
        "Seconds to wait at exit for events to be sent; the rest stays in the spool.", 5.0, type=float)
    spool_dir: Optional[Path] = _setting(
        "Where events wait while the appliance cannot be reached "
        "(default: ~/.cache/snakemake-logger-plugin-appliance).", type=Path)


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        settings = self.settings
        tags = [tag.strip() for tag in (settings.tags or "").split(",") if tag.strip()]
        self._mapper = RunMapper(Metadata(settings.name, settings.user, settings.group, tags),
                                 job_details=LiveJobs().details, warn=report)
        self._sender: Optional[Sender] = None
        self._broken = False
        if self.common_settings.dryrun:
            return  # a dry run runs nothing: it records nothing either
        self._sender = Sender(
            settings.url, settings.token, settings.spool_dir or default_root(),
            exit_wait=_number(settings.exit_wait, 5.0), heartbeat=_number(settings.heartbeat, 60.0)).start()
        atexit.register(self.close)  # should Snakemake exit without closing its loggers

    def emit(self, record) -> None:
        if self._sender is None:
            return
        try:
            events = self._mapper.map(record)
            if events:
                self._sender.put(events)
            if self._sender.heartbeat_run is None and self._mapper.run_id and not self._mapper.ended:
                self._sender.heartbeat_run = self._mapper.run_id
        except Exception as error:  # a record we did not foresee must not break Snakemake
            self._unexpected(error)

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.heartbeat_run = None
            try:
                sender.put(self._mapper.finish())
            except Exception as error:
                self._unexpected(error)
            sender.close()
        super().close()

    def _unexpected(self, error: Exception) -> None:
        if not self._broken:  # once: the records that follow are most likely alike
            self._broken = True
            report(f"a log record could not be recorded (skipped; please report this): {error!r}")

    # The interface's questions.

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        # Snakemake's default filter would drop records (all of them under --quiet).
        return True

    @property
    def has_formatter(self) -> bool:
        return True  # events are built from the records' fields, not from formatted text

    @property
    def needs_rulegraph(self) -> bool:
        return True  # recorded once per run (a rule_graph event)


def _number(value, default: float) -> float:
    return default if value is None else float(value)
