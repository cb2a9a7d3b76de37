"""Shared machinery for running real servers as the test bed's own processes.

Every server is downloaded once into the git-ignored `.cache/downloads/`, started on
127.0.0.1 with freshly picked free ports, logs to `.cache/testbed/logs/<name>.log`,
and is recorded (ports, pid, pid start time) in `.cache/testbed/state.json` so that
another process - `python -m testbed down`, or a test that restarts a broker - can
find and stop exactly that process later, keeping its ports and data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from testbed import versions

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
DOWNLOADS_DIR = CACHE_DIR / "downloads"
TESTBED_DIR = Path(os.environ.get("TESTBED_HOME") or CACHE_DIR / "testbed").resolve()
"""State, logs and server data; TESTBED_HOME gives concurrent runs in one tree their own."""
LOG_DIR = TESTBED_DIR / "logs"
STATE_FILE = TESTBED_DIR / "state.json"
ENDPOINTS_FILE = TESTBED_DIR / "endpoints.json"
LOOPBACK = "127.0.0.1"


class TestbedError(RuntimeError):
    """A server could not be fetched, started, or did not become healthy."""


# --- downloads -------------------------------------------------------------------


def _run_mvn(args: list[str], cwd: Path) -> None:
    if shutil.which("mvn") is None:
        raise TestbedError("mvn is not on PATH; install Maven (Debian package 'maven')")
    done = subprocess.run(["mvn", "-B", "-q", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise TestbedError(f"mvn {' '.join(args)} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")


def cached(name: str, fill: Callable[[Path], None]) -> Path:
    """Return `.cache/downloads/<name>`, filling it once via `fill(tmpdir)`.

    The fill goes into a temporary sibling that is renamed into place only when it
    succeeded, under a file lock, so an interrupted or concurrent fetch never leaves a
    half-downloaded directory that a later run would trust.
    """
    final = DOWNLOADS_DIR / name
    if (final / ".complete").exists():
        return final
    DOWNLOADS_DIR.mkdir(parents=True, exist_ok=True)
    with open(DOWNLOADS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").exists():
            return final
        tmp = Path(tempfile.mkdtemp(dir=DOWNLOADS_DIR, prefix=f".{name}-"))
        try:
            fill(tmp)
            (tmp / ".complete").touch()
            tmp.chmod(0o755)  # mkdtemp made it private; others (the Elasticsearch user) read it
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def mvn_copy(artifact: str, name: str) -> Path:
    """Download one Maven artifact (`g:a:v[:type[:classifier]]`) into a cached dir."""

    def fill(tmp: Path) -> None:
        _run_mvn([f"{versions.MAVEN_DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact}",
                  f"-DoutputDirectory={tmp}"], cwd=tmp)

    return cached(name, fill)


def mvn_copy_dependencies(pom: str, name: str) -> Path:
    """Download the runtime closure of the dependencies listed in a `pom`-packaged pom."""

    def fill(tmp: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="testbed-pom-"))
        try:
            (work / "pom.xml").write_text(pom)
            _run_mvn([f"{versions.MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
                      f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"], cwd=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return cached(name, fill)


# --- ports and processes ---------------------------------------------------------

_ports_lock = threading.Lock()
_ports_handed: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port that is free now and not yet handed to another server here.

    It is drawn at random below the kernel's ephemeral range: a server binds its port
    seconds after it was picked (Kafka's controller port only after the JVM booted), and
    a port from the ephemeral range can be taken meanwhile by any outgoing connection.
    """
    low = max(_ephemeral_low(), 12000)
    with _ports_lock:
        while True:
            port = random.randrange(10000, low)
            if port in _ports_handed:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((LOOPBACK, port))
                except OSError:
                    continue
            _ports_handed.add(port)
            return port


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`: with the pid it names one process for sure."""
    fields = _proc_stat(pid)
    return None if fields is None else fields[19]


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group `pgid`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def minimal_env(**extra: str) -> dict[str, str]:
    """A small environment for a server, so that variables of the calling shell
    (for example Zipkin's KAFKA_BOOTSTRAP_SERVERS) cannot switch on surprises."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env.update(extra)
    return env


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


@dataclass
class Launch:
    """How to start a server's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None


# --- the server base class -------------------------------------------------------


@dataclass
class Server:
    """One real server of the test bed; subclasses say how to fetch, start and probe it."""

    name: ClassVar[str]
    env_var: ClassVar[str]
    port_names: ClassVar[tuple[str, ...]] = ("port",)
    start_timeout: ClassVar[float] = 180.0

    ports: dict[str, int] = field(default_factory=dict)
    pid: int | None = None
    pid_start: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for port_name in self.port_names:
            self.ports.setdefault(port_name, free_port())

    # what subclasses provide
    def fetch(self) -> None:
        """Download what the server needs (cached)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Make fresh data and configuration; called by `up`, never by `restart`."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)

    def launch(self) -> Launch:
        raise NotImplementedError

    def probe(self) -> bool:
        """One quick readiness check; True when clients can use the server."""
        raise NotImplementedError

    def endpoint(self) -> str:
        raise NotImplementedError

    def exports(self) -> dict[str, str]:
        """Every variable this server exports (name -> value); a server with more
        than one endpoint (the OTLP receiver's HTTP, gRPC and query ports) adds its own."""
        return {self.env_var: self.endpoint()}

    # shared behaviour
    @property
    def port(self) -> int:
        return self.ports["port"]

    @property
    def workdir(self) -> Path:
        return TESTBED_DIR / self.name

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    def alive(self) -> bool:
        if self._proc is not None:
            self._proc.poll()  # reap our own child so it does not linger as a zombie
        if self.pid is None:
            return False
        fields = _proc_stat(self.pid)
        return fields is not None and fields[0] != "Z" and fields[19] == self.pid_start

    def healthy(self) -> bool:
        """Alive and passing one probe now; a probe that raises counts as not healthy."""
        try:
            return self.alive() and self.probe()
        except Exception:
            return False

    def start(self) -> None:
        """Start the process (in its own session, so it outlives the caller)."""
        if self.alive():
            raise TestbedError(f"{self.name} is already running as pid {self.pid}")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        spec = self.launch()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== testbed: starting {self.name} at {time.ctime()}: {spec.argv}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                spec.argv, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                user=spec.user, group=spec.user, extra_groups=[] if spec.user else None,
            )
        self.pid = self._proc.pid
        self.pid_start = process_start_time(self.pid)

    def wait_healthy(self, timeout: float | None = None) -> float:
        """Poll `probe()` until it passes; fail fast if the process dies. Returns seconds."""
        began = time.monotonic()
        deadline = began + (timeout or self.start_timeout)
        last_error = "probe never passed"
        while True:
            if not self.alive():
                raise TestbedError(f"{self.name} exited before becoming healthy; "
                                   f"last lines of {self.log_path}:\n{tail(self.log_path)}")
            try:
                if self.probe():
                    return time.monotonic() - began
            except Exception as exc:  # not ready yet: connection refused, 503, ...
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise TestbedError(f"{self.name} not healthy after {timeout or self.start_timeout:.0f}s "
                                   f"(last probe: {last_error}); last lines of {self.log_path}:\n{tail(self.log_path)}")
            time.sleep(0.25)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after `timeout`."""
        if self.alive() and self.pid is not None:
            pgid = self.pid  # start_new_session made the server its group's leader
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
                if self._wait_group_gone(pgid, wait):
                    break
        self.pid = None
        self.pid_start = None
        self._proc = None

    def _wait_group_gone(self, pgid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()
            if not _group_alive(pgid):
                return True
            time.sleep(0.1)
        return False

    def to_state(self) -> dict[str, Any]:
        return {"ports": self.ports, "pid": self.pid, "pid_start": self.pid_start,
                "endpoint": self.endpoint(), "env_var": self.env_var, "exports": self.exports()}

    @classmethod
    def from_state(cls, entry: dict[str, Any]) -> Server:
        return cls(ports=dict(entry["ports"]), pid=entry.get("pid"), pid_start=entry.get("pid_start"))


# --- the state file --------------------------------------------------------------


@contextlib.contextmanager
def state() -> Iterator[dict[str, Any]]:
    """Read-modify-write `.cache/testbed/state.json` under an exclusive file lock."""
    TESTBED_DIR.mkdir(parents=True, exist_ok=True)
    with open(TESTBED_DIR / ".state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
        yield data
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(STATE_FILE)


def read_state() -> dict[str, Any]:
    with state() as data:
        return dict(data)


def exported(entries: Any) -> dict[str, str]:
    """Env var name -> value for every running server among the state `entries`."""
    out: dict[str, str] = {}
    for e in entries:
        if e.get("pid"):
            out.update(e.get("exports") or {e["env_var"]: e["endpoint"]})
    return out


def write_endpoints(data: dict[str, Any]) -> dict[str, str]:
    """Write `endpoints.json` (env var name -> endpoint) for every running server."""
    endpoints = exported(data.values())
    ENDPOINTS_FILE.write_text(json.dumps(endpoints, indent=2, sort_keys=True))
    return endpoints
