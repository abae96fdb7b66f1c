"""A private PostgreSQL cluster in a folder, for tests, benchmarks and trials.

It uses the machine's own server binaries (`pg_config --bindir`). `initdb`
refuses to run as root, so under root every server command runs as the
unprivileged `postgres` user that Debian's packages create. With a password,
connections over TCP (the URL's) must give it; local socket ones are trusted.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

# runuser is in /usr/sbin, which a PATH may lack.
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
# Durability is pointless for a throwaway cluster and costs seconds per test run.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class LocalPostgresError(RuntimeError):
    pass


def server_bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
        bindir = Path(out.strip())
    except (OSError, subprocess.CalledProcessError):
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        if not candidates:
            raise LocalPostgresError("no PostgreSQL server binaries: pg_config is not on PATH") from None
        bindir = candidates[0]
    if not (bindir / "initdb").exists():
        raise LocalPostgresError(f"no initdb in {bindir}: install the PostgreSQL server package")
    return bindir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """One cluster: `initdb` on first start, then start, stop and restart at will."""

    def __init__(self, base_dir: Path, *, port: int | None = None, durable: bool = False,
                 password: str | None = None):
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self.user = "postgres"
        self.password = password
        self.bindir = server_bindir()
        self._run_as = _unprivileged_user()

    @classmethod
    def temporary(cls, **kwargs) -> "LocalPostgres":
        """A cluster in a new temporary folder, which `destroy()` removes."""
        base = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
        base.chmod(0o755)  # the server user must reach its data folder inside
        return cls(base / "cluster", **kwargs)

    def url(self, database: str = "postgres") -> str:
        credentials = self.user if self.password is None else f"{self.user}:{quote(self.password, safe='')}"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "LocalPostgres":
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        options = [f"-p {self.port}", f"-k {self.base_dir}", "-c listen_addresses=127.0.0.1"]
        if not self.durable:
            options += [f"-c {setting}" for setting in FAST_SETTINGS]
        self._server_command(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
            "-o", " ".join(options), "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._server_command("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self.base_dir.parent.name.startswith("appliance-pg-"):
            shutil.rmtree(self.base_dir.parent, ignore_errors=True)

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def standby(self) -> "LocalPostgres":
        """A new cluster in a temporary folder, a copy of this running one that streams
        from it once started (`pg_basebackup -R` over this cluster's socket): a standby."""
        standby = LocalPostgres.temporary(durable=self.durable, password=self.password)
        standby._make_base_dir()
        self._server_command("pg_basebackup", "-D", str(standby.data_dir), "-h", str(self.base_dir),
                             "-p", str(self.port), "-U", self.user, "-R", "--checkpoint=fast", "--no-sync")
        return standby

    def promote(self) -> None:
        """A standby made a primary; returns once it accepts writes."""
        self._server_command("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "promote")

    def _make_base_dir(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            os.chown(self.base_dir, self._run_as.pw_uid, self._run_as.pw_gid)
            self.base_dir.chmod(0o755)

    def _initdb(self) -> None:
        self._make_base_dir()
        options = ["-D", str(self.data_dir), "-U", self.user, "--encoding=UTF8", "--locale=C", "--no-sync"]
        if self.password is None:
            self._server_command("initdb", *options, "--auth=trust")
            return
        # The server user reads the password from a file of its own, removed once initdb is done.
        descriptor, pwfile = tempfile.mkstemp(prefix="pwfile-", dir=self.base_dir)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(self.password + "\n")
            if self._run_as is not None:
                os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
            self._server_command("initdb", *options, "--auth-host=scram-sha-256", "--auth-local=trust",
                                 f"--pwfile={pwfile}")
        finally:
            os.unlink(pwfile)

    def _server_command(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._run_as is not None:
            command = [RUNUSER, "-u", self._run_as.pw_name, "--", *command]
        # A session of its own: a Ctrl-C in the terminal that started it reaches the appliance
        # only, and whoever started the cluster stops it afterwards, in order.
        result = subprocess.run(command, capture_output=True, text=True, cwd="/", start_new_session=True)
        if result.returncode != 0:
            log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise LocalPostgresError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log_tail}".strip()
            )


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise LocalPostgresError(
            "running as root and there is no 'postgres' user for initdb; "
            "install the PostgreSQL server package or run as an unprivileged user"
        ) from None


def cluster_dir(base: Path) -> Path:
    """Where the private cluster of folder `base` lives: `base`/cluster, or, under root in a folder
    the postgres user cannot enter (a clone in /root, mode 700), a folder in that user's home
    named after `base`, so that initdb and the server can reach their data."""
    recorded = base / "cluster-dir"
    if recorded.exists():
        return Path(recorded.read_text().strip())
    inside = base / "cluster"
    server_user = _unprivileged_user()
    if server_user is None or (inside / "data" / "PG_VERSION").exists() or _can_enter(server_user, base):
        return inside
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    return Path(server_user.pw_dir) / "appliance-clusters" / digest


def _can_enter(user: pwd.struct_passwd, folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    check = subprocess.run([RUNUSER, "-u", user.pw_name, "--", "test", "-x", str(folder)], cwd="/")
    return check.returncode == 0


def _main(argv: list[str] | None = None) -> int:
    """`python -m appliance.localpg start|stop|url DIR`: a private cluster kept for DIR.

    `start` prints the URL of its `appliance` database (created on first start);
    `url` prints it without starting anything; the port is chosen once and
    remembered in DIR/port. The cluster is in DIR/cluster, or (under root, when
    the postgres user cannot enter DIR) in that user's home; DIR/cluster-dir says where.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m appliance.localpg", description=_main.__doc__)
    parser.add_argument("action", choices=("start", "stop", "url"))
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    base = args.directory.resolve()
    port_file = base / "port"
    port = int(port_file.read_text()) if port_file.exists() else None
    if args.action != "start" and port is None:
        return 1  # never started: nothing to stop, no URL
    cluster = LocalPostgres(cluster_dir(base), port=port, durable=True)
    if args.action == "stop":
        cluster.stop()
        return 0
    if args.action == "url":
        print(cluster.url("appliance"))
        return 0
    base.mkdir(parents=True, exist_ok=True)
    port_file.write_text(str(cluster.port))
    (base / "cluster-dir").write_text(f"{cluster.base_dir}\n")
    if not (cluster.data_dir / "postmaster.pid").exists():
        cluster.start()
    _create_database(cluster.url("postgres"), "appliance")
    print(cluster.url("appliance"))
    return 0


def _create_database(admin_url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    from appliance.sql import load_queries

    queries = load_queries("localpg.sql")
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(queries["database_exists"], {"name": name})
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL(queries["create_database"]).format(name=sql.Identifier(name)))
    finally:
        connection.close()


if __name__ == "__main__":
    raise SystemExit(_main())
