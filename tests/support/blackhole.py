"""A TCP server that accepts connections and never answers: the backend that hangs.

Used to prove that start-up and shutdown are bounded whatever a backend does. It
reads and discards what arrives (so the client's send does not block on a full
window) and keeps every connection open until closed.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class BlackHole:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="blackhole", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    @staticmethod
    def _swallow(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
