"""A TCP proxy in front of a REAL server that injects faults: a fault injector,
not a fake server. In ``pass`` mode bytes flow unchanged to the upstream server.

Modes (set :attr:`FaultProxy.mode` at any time; a kept-alive connection opened in
another mode is cut on its next request, so the client reconnects into the new
mode):

* ``pass``: forward both ways;
* ``delay``: forward, but hold each chunk from the client for ``delay_s`` seconds;
* ``reset``: accept, then reset the connection (RST) without answering;
* ``http503``: read each HTTP request and answer ``503 Service Unavailable``;
* ``refuse``: stop listening, so connects are refused; any other mode listens again.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "delay", "reset", "http503", "refuse"]


def _abort(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, delay_s: float = 3.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_s
        self._mode: Mode = "pass"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = 0
        self.connections = 0
        self.answered_503 = 0
        self._closed = False
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        with self._lock:
            self._mode = mode
            if mode == "refuse" and self._listener is not None:
                self._listener.close()
                self._listener = None
        if mode != "refuse" and self._listener is None:
            self._listen()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        mode = self._mode
        if mode in ("reset", "refuse"):
            _abort(client)
        elif mode == "http503":
            self._answer_503(client)
        else:
            self._pipe(client, mode)

    def _answer_503(self, client: socket.socket) -> None:
        buffer = b""
        try:
            while self._mode == "http503":
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[length:]
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                self.answered_503 += 1
        except OSError:
            pass
        finally:
            client.close()

    def _pipe(self, client: socket.socket, mode: Mode) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _abort(client)
            return
        upstream.settimeout(None)
        threading.Thread(target=self._copy, args=(upstream, client, None), daemon=True).start()
        self._copy(client, upstream, mode)

    def _copy(self, source: socket.socket, target: socket.socket, mode: Mode | None) -> None:
        """Copy bytes; in the client-to-server direction apply (and watch) the mode."""
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if mode is not None:
                    if self._mode != mode:
                        break
                    if mode == "delay":
                        threading.Event().wait(self.delay_s)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            _abort(source)
            _abort(target)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._listener is not None:
                self._listener.close()
                self._listener = None
