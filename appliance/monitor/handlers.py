"""What the monitor does with a change: a log line always, webhooks, custom handlers.

A handler is any callable taking a `Change` (and, if it wants to write in the
monitor's transaction, a cursor); it raises to say it failed, and
the change is then tried again at a later claim (up to MONITOR_MAX_ATTEMPTS).
Custom handlers are named by dotted path in MONITOR_HANDLERS, e.g.
`mypackage.notify:on_change`, so a site extends the monitor without editing it.
"""

from __future__ import annotations

import base64
import functools
import importlib
import inspect
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from appliance import db
from appliance.config import MonitorSettings

Handler = Callable[["Change"], None]


@dataclass(frozen=True)
class Change:
    """One change_notifications row."""

    id: int
    table_name: str
    operation: str
    row_key: dict
    changed_fields: list[str]
    old_values: dict | None
    new_values: dict | None
    transaction_id: int
    timestamp: datetime
    attempts: int = 0

    @property
    def new_status(self) -> str | None:
        return (self.new_values or {}).get("status")

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["timestamp"] = self.timestamp.isoformat()
        return document


def log_line(change: Change, stream=None) -> None:
    """The structured log line of every change: what changed, not the whole row."""
    line = {
        # Names the program, as every line of docker logs does (they share one stdout).
        "program": "monitor", "event": "change", "id": change.id, "table": change.table_name, "op": change.operation,
        "key": change.row_key, "changed": change.changed_fields, "status": change.new_status,
        "at": change.timestamp.isoformat(),
    }
    print(json.dumps(line, default=str), file=stream or sys.stdout, flush=True)


def mask_webhook_url(url: str) -> str:
    """Scheme, host and path only: user info and query strings often carry tokens."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: leave it out rather than fail in an error message
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without user info, and the `Authorization: Basic` value it carried (None without).

    urllib would take `user:password@host` for a host with a port and fail
    with an error that repeats the password, so the credentials go in a header.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=hostport)), f"Basic {token}"


Wait = Callable[[float], bool]
"""Waits up to that many seconds; True when the monitor is stopping (threading.Event.wait)."""

STOP_GRACE = 1.5
"""Seconds a webhook request in flight may still take once the monitor is stopping.

supervisord gives the monitor 3 s (stopwaitsecs) before it kills it; the
webhook's own timeout (MONITOR_WEBHOOK_TIMEOUT, default 5 s) is longer.
"""


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class Webhook:
    """POSTs each change that passes the filter as JSON, with bounded retries."""

    def __init__(self, url: str, settings: MonitorSettings, wait: Wait = _sleep):
        self.url, self.authorization = split_credentials(url)
        # What messages show: no user info, no query string (either may hold a secret).
        self.shown_url = mask_webhook_url(url)
        self.secrets = _secrets_of(url)
        self.tables = set(settings.webhook_tables)
        self.statuses = set(settings.webhook_statuses)
        self.timeout = settings.webhook_timeout
        self.tries = settings.webhook_retries
        self.wait = wait

    def wants(self, change: Change) -> bool:
        if change.table_name not in self.tables:
            return False
        return "*" in self.statuses or change.new_status in self.statuses

    def __call__(self, change: Change) -> None:
        if not self.wants(change):
            return
        body = json.dumps(change.to_json(), default=str).encode()
        for attempt in range(1, self.tries + 1):
            try:
                self._post(body, change.id)
                return
            except _Abandoned:
                raise WebhookError(f"{self.shown_url}: no answer yet when the monitor stopped "
                                   "(sent again at its next start)") from None
            except Exception as error:  # every failure is a failed try; its text is never trusted
                reason = _redact(_reason(error), self.secrets)
                if attempt == self.tries:
                    raise WebhookError(f"{self.shown_url}: {reason} (after {self.tries} tries)") from None
                # SIGTERM gives the monitor 3 s (supervisord's stopwaitsecs): no more tries then.
                if self.wait(min(0.25 * 2 ** (attempt - 1), 5.0)):
                    raise WebhookError(f"{self.shown_url}: {reason} "
                                       "(the monitor is stopping; tried again at its next start)") from None

    def _post(self, body: bytes, change_id: int) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "appliance-monitor",
            # Lets a receiver drop a change delivered twice (after a crash before the mark).
            "Idempotency-Key": f"change-{change_id}",
        }
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        outcome: list[BaseException | None] = []
        done = threading.Event()

        def send() -> None:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                outcome.append(None)
            except BaseException as error:  # handed to the monitor's thread below
                outcome.append(error)
            finally:
                done.set()

        # In a thread of its own: a blocked read cannot be cut short, but it can be left
        # behind when a SIGTERM leaves less time than the webhook's timeout.
        threading.Thread(target=send, name=f"webhook change-{change_id}", daemon=True).start()
        while not done.wait(0.1):
            if self.wait(0) and not done.wait(STOP_GRACE):
                raise _Abandoned()
        if outcome[0] is not None:
            raise outcome[0]


class WebhookError(RuntimeError):
    pass


class _Abandoned(Exception):
    """The monitor stopped before the receiver answered."""


def _reason(error: Exception) -> str:
    """Why a try failed, from the error's kind and code only.

    The text of an exception may repeat the URL it was about (http.client's
    InvalidURL does, with the password), so it is never used as such.
    """
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"  # e.g. "Connection refused", no address
    return type(error).__name__


def _secrets_of(url: str) -> tuple[str, ...]:
    """The parts of a webhook URL that must never be shown: user info and query."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    candidates = {userinfo, *userinfo.split(":", 1), parts.query}
    candidates |= {unquote(candidate) for candidate in candidates}
    return tuple(sorted((c for c in candidates if len(c) >= 3), key=len, reverse=True))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """A second line of defence behind _reason: any secret left in the text becomes ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def load_handler(dotted_path: str) -> Handler:
    """`package.module:function` or `package.module.function`."""
    module_name, _, attribute = dotted_path.replace(":", ".").rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"MONITOR_HANDLERS: cannot load {dotted_path!r}: {error}") from None
    if not callable(handler):
        raise ValueError(f"MONITOR_HANDLERS: {dotted_path!r} is not callable")
    return handler


def configured_handlers(settings: MonitorSettings, wait: Wait = _sleep) -> list[Handler]:
    handlers: list[Handler] = [Webhook(url, settings, wait) for url in settings.webhook_urls]
    handlers += [load_handler(path) for path in settings.handlers]
    return handlers


def run_handlers(change: Change, handlers: Iterable[Handler], cursor=None) -> str | None:
    """Run every handler; the errors, joined, or None when all succeeded.

    A handler that takes a second argument gets the monitor's cursor: what it
    writes commits with the change's mark, so it happens exactly once even if
    the monitor is killed midway. A savepoint keeps its failure from aborting
    the claim's transaction.
    """
    log_line(change)
    errors = []
    for handler in handlers:
        try:
            if cursor is not None and takes_cursor(handler):
                with db.savepoint(cursor):
                    handler(change, cursor)
            else:
                handler(change)
        except Exception as error:  # a handler's failure must not stop the monitor
            if cursor is not None and cursor.connection.closed:
                raise  # the monitor's own connection is gone, not the handler at fault: the change is claimed again
            errors.append(f"{getattr(handler, '__name__', type(handler).__name__)}: {error}")
    return "; ".join(errors) or None


@functools.cache
def takes_cursor(handler: Handler) -> bool:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2
