"""Settings read from the environment, once, in one place.

Every other module receives a `Settings` (or the values it needs) as an
argument; nothing else reads `os.environ`. Validation collects every problem
before failing, so a person fixing a `.env` file sees them all at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from appliance.files import app_file
from appliance.vocabulary import TERMINAL_RUN_STATUSES

DEFAULT_MIGRATIONS_DIR = app_file("migrations")
DEFAULT_INIT_DB_DIR = app_file("init-db")
POSTGRES_PARTS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg2"}
LOG_FORMATS = ("text", "json")
# No setting needs more; it keeps every number within what PostgreSQL's integer, sleeps and time-outs take.
MAX_INTEGER = 2**31 - 1


class ConfigError(ValueError):
    """The environment is missing something or holds a malformed value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid configuration:\n{lines}")


@dataclass(frozen=True)
class MonitorSettings:
    poll_interval: int = 10
    webhook_urls: tuple[str, ...] = field(default=(), repr=False)  # may hold credentials
    webhook_tables: tuple[str, ...] = ("workflow_runs",)
    webhook_statuses: tuple[str, ...] = TERMINAL_RUN_STATUSES
    webhook_timeout: float = 5.0
    webhook_retries: int = 3
    max_attempts: int = 5
    handlers: tuple[str, ...] = ()
    retention_days: int = 7

    @classmethod
    def read(cls, env: "_Reader") -> "MonitorSettings":
        return cls(
            # Seconds between claims of unprocessed changes (the fallback to LISTEN) and heartbeats.
            poll_interval=env.integer("MONITOR_POLL_INTERVAL", default=10, minimum=1),
            # Comma-separated URLs that receive each change passing the filter as a JSON POST.
            webhook_urls=env.words("MONITOR_WEBHOOK_URLS", check=_parse_http_url),
            # The filter: changes of these tables ...
            webhook_tables=env.words("MONITOR_WEBHOOK_TABLES", default=("workflow_runs",)),
            # ... whose new status is one of these ("*": every change of those tables).
            webhook_statuses=env.words("MONITOR_WEBHOOK_STATUSES", default=TERMINAL_RUN_STATUSES),
            webhook_timeout=env.integer("MONITOR_WEBHOOK_TIMEOUT", default=5, minimum=1),
            # Tries per change and URL within one handling, with backoff between them.
            webhook_retries=env.integer("MONITOR_WEBHOOK_RETRIES", default=3, minimum=1),
            # Handlings of a change that fails before it is marked processed with its error.
            max_attempts=env.integer("MONITOR_MAX_ATTEMPTS", default=5, minimum=1),
            # Comma-separated dotted paths (package.module:function) of custom handlers.
            handlers=env.words("MONITOR_HANDLERS", check=_parse_handler_path),
            # Processed changes older than this many days are deleted, in small batches.
            retention_days=env.integer("CHANGE_RETENTION_DAYS", default=7, minimum=1, maximum=36500),
        )


@dataclass(frozen=True)
class WebSettings:
    bind: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    ingest_token: str | None = field(default=None, repr=False)
    ui_user: str | None = None
    ui_password: str | None = field(default=None, repr=False)
    ingest_max_events: int = 1000
    ingest_max_bytes: int = 5_000_000
    db_deadline: int = 10
    run_dir: Path | None = None

    @classmethod
    def read(cls, env: "_Reader") -> "WebSettings":
        ui_user, ui_password = env.get("APPLIANCE_UI_USER"), env.get("APPLIANCE_UI_PASSWORD")
        if bool(ui_user) != bool(ui_password):
            env.problems.append("APPLIANCE_UI_USER and APPLIANCE_UI_PASSWORD must be set together")
        run_dir = _run_dir(env)
        return cls(
            # Address and port gunicorn listens on.
            bind=env.get("APPLIANCE_BIND") or "127.0.0.1",
            port=env.integer("BACKEND_PORT", default=8000, minimum=1, maximum=65535),
            # gunicorn worker processes (each with a few threads).
            workers=env.integer("WEB_WORKERS", default=2, minimum=1, maximum=256),
            # Bearer token that POST /api/v1/events requires; unset: ingest is refused.
            ingest_token=env.get("APPLIANCE_INGEST_TOKEN"),
            # Basic auth for every page and read endpoint, when both are set.
            ui_user=ui_user,
            ui_password=ui_password,
            # Limits of one ingest request: more gets 413.
            ingest_max_events=env.integer("INGEST_MAX_EVENTS", default=1000, minimum=1),
            ingest_max_bytes=env.integer("INGEST_MAX_BYTES", default=5_000_000, minimum=1000),
            # Seconds a request may wait on the database before its connections are cut (503); 0: no limit.
            db_deadline=env.integer("WEB_DB_DEADLINE", default=10, minimum=0, maximum=3600),
            # supervisord's folder (socket): the system page reads program states there.
            run_dir=run_dir,
        )


# A unix socket's path has room for 107 bytes (sun_path); supervisord's socket goes in this folder.
MAX_RUN_DIR_BYTES = 107 - len("/supervisor.sock")


def _run_dir(env: "_Reader") -> Path | None:
    value = env.get("APPLIANCE_RUN_DIR")
    if not value:
        return None
    if not value.startswith("/"):
        env.problems.append(f"APPLIANCE_RUN_DIR must be an absolute path, not {value!r}")
    elif len(value.encode()) > MAX_RUN_DIR_BYTES:
        env.problems.append(f"APPLIANCE_RUN_DIR is {len(value.encode())} bytes long; the control socket "
                            f"in it needs a folder of at most {MAX_RUN_DIR_BYTES} bytes")
    return Path(value)


@dataclass(frozen=True)
class Settings:
    database_url: URL = field(repr=False)
    tracker_cache_size: int = 10_000
    tracker_max_retries: int = 5
    projector_batch_size: int = 1000
    projector_poll_interval: int = 5
    run_stale_after: int = 300
    health_stuck_after: int = 60
    db_wait_timeout: int = 60
    enable_db_monitoring: bool = True
    run_migrations: bool = True
    allow_auto_stamp: bool = False
    biomero_views: bool = False
    biomero_views_off_since: int = 0
    migrations_dir: Path = DEFAULT_MIGRATIONS_DIR
    install_triggers: bool = True
    init_db_dir: Path = DEFAULT_INIT_DB_DIR
    log_format: str = "text"
    monitor: MonitorSettings = MonitorSettings()
    web: WebSettings = WebSettings()

    @property
    def database_url_masked(self) -> str:
        return mask_url(self.database_url)

    def __repr__(self) -> str:
        values = [f"database_url={self.database_url_masked!r}"]
        values += [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "database_url"]
        return f"Settings({', '.join(values)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                  extra: Mapping[str, str] | None = None) -> "Settings":
        """The settings of `environ` (the process's environment by default), `extra` taking precedence
        (the `env=` an eventsourcing Application is given)."""
        env = _Reader({**(os.environ if environ is None else environ), **(extra or {})})
        database_url = env.database_url()
        cache_size = env.integer("TRACKER_CACHE_SIZE", default=10_000, minimum=0)
        max_retries = env.integer("TRACKER_MAX_RETRIES", default=5, minimum=0)
        # Events per projector transaction when there is a backlog.
        projector_batch_size = env.integer("PROJECTOR_BATCH_SIZE", default=1000, minimum=1)
        # Seconds between the projector's looks at the log without a NOTIFY (fallback, heartbeat).
        projector_poll_interval = env.integer("PROJECTOR_POLL_INTERVAL", default=5, minimum=1)
        # Seconds `appliance wait-for-db` (the entrypoint) waits for the database to accept connections.
        db_wait_timeout = env.integer("DB_WAIT_TIMEOUT", default=60, minimum=0)
        # false: supervisord does not start the monitor (conf/supervisord.conf reads it too).
        enable_db_monitoring = env.boolean("ENABLE_DB_MONITORING", default=True)
        # Seconds without an event (heartbeats count) after which a running run is shown
        # as stale: its source was killed or lost. 0: never.
        run_stale_after = env.integer("RUN_STALE_AFTER", default=300, minimum=0)
        # Seconds the projector may lag without moving, and a change may wait unhandled,
        # before `appliance status`, /system and /metrics call it stuck.
        health_stuck_after = env.integer("HEALTH_STUCK_AFTER", default=60, minimum=1)
        # 0: `appliance migrate` / `init` leave the schema alone (someone else migrates it).
        run_migrations = env.boolean("APPLIANCE_RUN_MIGRATIONS", default=True)
        # 1: a database whose view tables exist without Alembic's version table is stamped at head.
        allow_auto_stamp = env.boolean("APPLIANCE_ALLOW_AUTO_STAMP", default=False)
        # true: the projector keeps BIOMERO 2.8's four view tables (biomero_job_view, ...) itself,
        # for a facility that turned BIOMERO's own views off (docs/biomero.md).
        biomero_views = env.boolean("APPLIANCE_BIOMERO_VIEWS", default=False)
        # BIOMERO's newest event when its views were turned off: views at or before it are off,
        # though BIOMERO has recorded nothing since (appliance.biomero_guard). 0: not said.
        biomero_views_off_since = env.integer("APPLIANCE_BIOMERO_VIEWS_OFF_SINCE", default=0, minimum=0)
        # Where Alembic's environment and revisions are (default: migrations/ beside the package).
        migrations_dir = env.directory("APPLIANCE_MIGRATIONS_DIR", default=DEFAULT_MIGRATIONS_DIR, holding="env.py")
        # 0: `appliance install-triggers` / `init` leave functions and triggers alone.
        install_triggers = env.boolean("APPLIANCE_INSTALL_TRIGGERS", default=True)
        # Where the NN-*.sql scripts (functions, triggers) are (default: init-db/ beside the package).
        init_db_dir = env.directory("APPLIANCE_INIT_DB_DIR", default=DEFAULT_INIT_DB_DIR)
        # text: `<time> <program> <LEVEL> ...` lines; json: one JSON object per line (appliance/logs.py).
        chosen_log_format = env.get("LOG_FORMAT") or "text"
        if chosen_log_format not in LOG_FORMATS:
            env.problems.append(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {chosen_log_format!r}")
        monitor = MonitorSettings.read(env)
        web = WebSettings.read(env)
        env.raise_problems()
        assert database_url is not None
        return cls(database_url=database_url, tracker_cache_size=cache_size, tracker_max_retries=max_retries,
                   projector_batch_size=projector_batch_size, projector_poll_interval=projector_poll_interval,
                   db_wait_timeout=db_wait_timeout, enable_db_monitoring=enable_db_monitoring,
                   run_stale_after=run_stale_after, health_stuck_after=health_stuck_after,
                   run_migrations=run_migrations,
                   allow_auto_stamp=allow_auto_stamp, biomero_views=biomero_views,
                   biomero_views_off_since=biomero_views_off_since, migrations_dir=migrations_dir,
                   install_triggers=install_triggers, init_db_dir=init_db_dir, log_format=chosen_log_format,
                   monitor=monitor, web=web)


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """LOG_FORMAT alone, read before the other settings: a program logs their problems
    in it. An unknown value is text here, and one of those problems in Settings.from_env."""
    value = (os.environ if environ is None else environ).get("LOG_FORMAT", "")
    return value if value in LOG_FORMATS else "text"


# libpq takes secrets as query parameters too (postgresql://host/db?password=...).
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "passfile", "sslkey"})


def mask_url(url: URL | str) -> str:
    """The URL as text with its password, and any secret query parameter, replaced by ***;
    several hosts shown as libpq's URI writes them (postgresql://user:***@h1:5432,h2:5433/db?...)."""
    if isinstance(url, str):
        url = make_url(url)
    url = url.update_query_dict({name: "***" for name in url.query if name.lower() in SECRET_PARAMETERS})
    try:
        hosts = database_hosts(url)
    except ValueError:  # not a URL parse_database_url took: shown as it is
        hosts = []
    if len(hosts) < 2:
        return _readable(url.render_as_string(hide_password=True))
    text = url.difference_update_query(["host", "port"]).render_as_string(hide_password=True)
    scheme, _, rest = text.partition("://")
    credentials, _, database = rest.partition("/")  # no host here: credentials end with @, or are empty
    shown = ",".join(f"{host}:{port}" if port else host for host, port in hosts)
    return _readable(f"{scheme}://{credentials}{shown}/{database}")


def _readable(url_text: str) -> str:
    """A rendered URL without its percent-escapes (host=h:5432, not host=h%3A5432): to be read, not parsed."""
    before, mark, query = url_text.partition("?")
    return unquote(before) + mark + unquote_plus(query)


def libpq_params(url: URL) -> dict[str, Any]:
    """The URL as libpq's keywords, password included: give them to psycopg2, never print them.

    Read by SQLAlchemy's psycopg2 dialect, as a pool (db.make_engine) reads it, so
    db.connect's connections go to the same servers: several hosts, as
    `?host=h1:5432&host=h2:5433` or `?host=h1,h2&port=5432,5433`, become
    host='h1,h2' and port='5432,5433', which libpq tries in turn (and, with
    target_session_attrs=read-write, passes over a standby).
    """
    return _psycopg2_dialect().create_connect_args(url)[1]


def database_hosts(url: URL) -> list[tuple[str, int | None]]:
    """Every server the URL names, in the order libpq tries them: (host, port or None).

    ValueError (never repeating the URL) when its hosts and ports do not pair up.
    """
    try:
        params = libpq_params(url)
    except ArgumentError:  # the dialect's words: ports that are not numbers, or counts that differ
        raise ValueError("has hosts and ports that do not pair up (host=h1:5432&host=h2:5433, "
                         "or host=h1,h2&port=5432,5433)") from None
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")  # one port is an int; none leaves libpq's 5432
    ports += [""] * (len(hosts) - len(ports))
    return [(host, int(port) if port else None) for host, port in zip(hosts, ports)]


@cache
def _psycopg2_dialect():
    from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

    return PGDialect_psycopg2()


def parse_database_url(text: str) -> URL:
    """A PostgreSQL URL for SQLAlchemy with psycopg2; ValueError names what is wrong.

    Several hosts (a standby to fail over to) may be given as SQLAlchemy writes them
    (`?host=h1:5432&host=h2:5433`), as libpq's keywords (`?host=h1,h2&port=5432,5433`)
    or as libpq's URI (`@h1:5432,h2:5433/`, read as the first). The message never
    repeats the text, which may hold a password.
    """
    try:
        url = make_url(_hosts_into_query(text.strip()))
    except ArgumentError:
        raise ValueError("is not a URL (expected postgresql://user:password@host:5432/dbname)") from None
    except ValueError:  # SQLAlchemy's int() of what it took for the port
        raise ValueError("has a malformed host or port (expected host:5432)") from None
    if url.drivername not in POSTGRES_SCHEMES:
        raise ValueError(f"must be a postgresql:// URL, not {url.drivername}://")
    if url.host and "host" in url.query:
        raise ValueError("names hosts both before the database and in host= (give them in one place)")
    for host, port in database_hosts(url):
        _check_host(host, port)
    if not url.database:
        raise ValueError("names no database")
    return url.set(drivername="postgresql+psycopg2")


def _check_host(host: str, port: int | None) -> None:
    if not host:
        raise ValueError("names no host")
    if not re.fullmatch(r"[!-~]+", host):
        # libpq resolves ASCII names only; a space or an invisible character is a typo.
        raise ValueError("has a host name that is not plain ASCII (an international name goes in its xn-- form)")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"has port {port}; a port is from 1 to 65535")


def _hosts_into_query(text: str) -> str:
    """libpq's URI with several hosts (postgresql://u@h1:5432,h2:5433/db) as SQLAlchemy reads
    them (postgresql://u@/db?host=h1:5432&host=h2:5433); any other text as it is."""
    try:
        parts = urlsplit(text)
    except ValueError:  # brackets that do not pair up: make_url says what is wrong
        return text
    credentials, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return text
    query = "&".join([*(f"host={quote(host, safe=':')}" for host in hosts.split(",")), *filter(None, [parts.query])])
    return urlunsplit(parts._replace(netloc=credentials + at, query=query))


class _Reader:
    """Reads typed values from an environment mapping, collecting problems."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.problems: list[str] = []
        self.unreadable: set[str] = set()

    def get(self, name: str) -> str | None:
        """The value, None when unset or empty, or when it is not UTF-8 (a problem then)."""
        value = self.environ.get(name)
        if value in (None, ""):
            return None
        try:
            value.encode("utf-8")  # bytes that are not UTF-8 arrive as lone surrogates
        except UnicodeEncodeError:
            if name not in self.unreadable:
                self.unreadable.add(name)
                self.problems.append(f"{name} holds bytes that are not UTF-8 text")
            return None
        return value

    def integer(self, name: str, *, default: int, minimum: int, maximum: int = MAX_INTEGER) -> int:
        return self._convert(name, default, _parse_int(minimum, maximum))

    def words(self, name: str, *, default: tuple[str, ...] = (), check=None) -> tuple[str, ...]:
        """A comma-separated list; `check` validates each item."""
        text = self.get(name)
        if text is None:
            return default
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        for item in items if check else ():
            try:
                check(item)
            except ValueError as error:
                self.problems.append(f"{name} {error}")
        return items

    def directory(self, name: str, *, default: Path, holding: str | None = None) -> Path:
        """An existing directory; with `holding`, one that contains that file."""
        return self._convert(name, default, _parse_directory(holding))

    def boolean(self, name: str, *, default: bool) -> bool:
        return self._convert(name, default, _parse_bool)

    def _convert(self, name: str, default, parse: Callable[[str], object]):
        text = self.get(name)
        if text is None:
            return default
        try:
            return parse(text)
        except ValueError as error:
            self.problems.append(f"{name} {error}")
            return default

    def database_url(self) -> URL | None:
        for name in ("DATABASE_URL", "SQLALCHEMY_URL"):
            text = self.get(name)
            if text is not None:
                return self._convert(name, None, parse_database_url)
            if name in self.unreadable:
                return None
        if any(self.get(part) for part in POSTGRES_PARTS):
            return self._url_from_parts()
        self.problems.append(
            "DATABASE_URL is not set (or SQLALCHEMY_URL, or POSTGRES_HOST, POSTGRES_DB, "
            "POSTGRES_USER and POSTGRES_PASSWORD)"
        )
        return None

    def _url_from_parts(self) -> URL | None:
        missing = [name for name in ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER")
                   if not self.get(name) and name not in self.unreadable]
        for name in missing:
            self.problems.append(f"{name} is not set (needed when the database is given by POSTGRES_* variables)")
        port = self._convert("POSTGRES_PORT", 5432, _parse_int(1, maximum=65535))
        if missing or self.unreadable & set(POSTGRES_PARTS):
            return None
        return URL.create(
            "postgresql+psycopg2",
            username=self.get("POSTGRES_USER"),
            password=self.get("POSTGRES_PASSWORD"),
            host=self.get("POSTGRES_HOST"),
            port=port,
            database=self.get("POSTGRES_DB"),
        )

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


# The words supervisord accepts for a boolean, so a value that passes here also passes there.
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def _parse_bool(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"must be true or false, not {text!r}")


def parse_whole_number(text: str, minimum: int, maximum: int = MAX_INTEGER) -> int:
    """A whole number written in ASCII digits, within its bounds; ValueError says what is wanted.

    The one parser of whole numbers from text: the environment here, the
    command line's arguments (appliance.cli) and the pages' query arguments
    (appliance.web.data). int() alone would take "٣", "８０" or "1_000", which
    the health check (reading BACKEND_PORT itself) and supervisord would not.
    """
    # 19 digits hold every bound used (2**62 and 2**63 - 1); more only makes work.
    value = int(text) if re.fullmatch(r"-?[0-9]{1,19}", text) else None
    if value is not None and minimum <= value <= maximum:
        return value
    shown = f", not {value}" if value is not None else f", not {text!r}" if len(text) <= 40 else ""
    if maximum != MAX_INTEGER:
        raise ValueError(f"must be a whole number from {minimum} to {maximum}{shown}")
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError(f"must be a whole number{shown}")
    too_small = text.startswith("-") if value is None else value < minimum
    raise ValueError(f"must be at least {minimum}{shown}" if too_small else f"must be at most {maximum}{shown}")


def _parse_int(minimum: int, maximum: int = MAX_INTEGER) -> Callable[[str], int]:
    return lambda text: parse_whole_number(text, minimum, maximum)


def _parse_directory(holding: str | None) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        path = Path(text.strip())
        if not path.is_dir():
            raise ValueError(f"must name an existing directory, not {text!r}")
        if holding and not (path / holding).is_file():
            raise ValueError(f"must name a directory holding {holding}, not {text!r}")
        return path

    return parse


def _parse_handler_path(text: str) -> str:
    """`package.module:function` or `package.module.function`: the form only (importing is the monitor's job)."""
    module, _, attribute = text.replace(":", ".", 1).rpartition(".")
    if text.count(":") > 1 or not module or not all(part.isidentifier() for part in [*module.split("."), attribute]):
        raise ValueError(f"has {text!r}, which is not a dotted path like package.module:function")
    return text


def _parse_http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never repeat the text: a webhook URL may carry a token.
        raise ValueError("must hold http:// or https:// URLs with a host")
    try:
        parts.port
    except ValueError:
        raise ValueError("must hold URLs whose port is a number from 0 to 65535") from None
    return text
