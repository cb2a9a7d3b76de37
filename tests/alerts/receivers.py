"""Real receiving ends for the notifier tests: an HTTP webhook receiver and an Exim MTA.

The HTTP receiver is what a user would run to receive webhooks (stdlib
``http.server``); it can be stopped and restarted on the same port to play a
receiver that is down, then back. The MTA is Debian's real Exim
(``exim4-daemon-light``) started on a free loopback port with a throw-away
configuration that accepts mail from 127.0.0.1 and appends it to one mbox file,
so the test reads back exactly what a mail client would get.
"""

from __future__ import annotations

import json
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testbed.base import free_port
from tests.support.waiting import wait_for


class HttpReceiver:
    """Records JSON POSTs; ``status`` is the HTTP status it answers with."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.status = 200
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HttpReceiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if owner.status == 200:
                    with owner._lock:
                        owner.received.append((self.path, json.loads(body)))
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [b for _, b in self.received]


EXIM_PACKAGE = "exim4-daemon-light"

_EXIM_CONF = """\
primary_hostname = alerts.test
exim_user = {user}
exim_group = {group}
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
pid_file_path = {root}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
qualify_domain = alerts.test
tls_advertise_hosts =
host_lookup =
rfc1413_hosts =
keep_environment =
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  deny local_parts = refuse-me
  accept hosts = 127.0.0.1
  deny

begin routers
everyone:
  driver = accept
  transport = mailbox

begin transports
mailbox:
  driver = appendfile
  file = {root}/mailbox
  user = {user}
  envelope_to_add
  return_path_add

begin retry
* * F,1m,1m
"""


class Exim:
    """A real Exim daemon on a free loopback port, delivering everything into ``mailbox``."""

    def __init__(self) -> None:
        self.binary = shutil.which("exim4") or shutil.which("exim")
        if self.binary is None and os.geteuid() == 0:
            subprocess.run(["apt-get", "install", "-y", "-qq", EXIM_PACKAGE], check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True)
            self.binary = shutil.which("exim4") or shutil.which("exim")
        if self.binary is None:
            pytest.fail(f"Exim is needed for the e-mail tests: apt-get install {EXIM_PACKAGE}")
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="co-alerts-exim-")
        user = "Debian-exim"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            pytest.fail(f"user {user} missing: is {EXIM_PACKAGE} installed properly?")
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(self.root, sub))
        self.conf = os.path.join(self.root, "exim.conf")
        with open(self.conf, "w") as fh:  # owned by root: Exim refuses a config others could edit
            fh.write(_EXIM_CONF.format(user=user, group=user, root=self.root, port=self.port))
        os.chmod(self.conf, 0o644)
        for path in (self.root, os.path.join(self.root, "spool"), os.path.join(self.root, "log")):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        self.mailbox = os.path.join(self.root, "mailbox")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Exim:
        assert self.binary is not None
        self.proc = subprocess.Popen([self.binary, "-C", self.conf, "-bdf", "-oX", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"exim exited: {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for("exim to listen", up)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def messages(self) -> list[Message]:
        if not os.path.exists(self.mailbox):
            return []
        return [m for m in mailbox.mbox(self.mailbox)]

    def log(self) -> str:
        path = os.path.join(self.root, "log", "mainlog")
        return open(path).read() if os.path.exists(path) else ""
