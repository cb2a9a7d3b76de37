"""Stop, start and restart the servers that `python -m testbed up` started, in place.

Tests use this to cut a server off mid-run (Zipkin down while spans are exported, the
Kafka broker restarted mid-stream) and bring it back on the same port with the same
data. It works from any process: everything it needs is in the state file.
"""

from __future__ import annotations

from testbed.base import Server, TestbedError, read_state, state, write_endpoints


def server(name: str) -> Server:
    """The recorded server `name`, rebuilt from the state file."""
    from testbed import SERVICES

    entry = read_state().get(name)
    if entry is None or name not in SERVICES:
        raise TestbedError(f"{name} is not part of the running test bed; run `python -m testbed up`")
    return SERVICES[name].from_state(entry)


def _record(srv: Server) -> None:
    with state() as data:
        data[srv.name] = srv.to_state()
        write_endpoints(data)


def endpoint(name: str) -> str:
    return server(name).endpoint()


def is_running(name: str) -> bool:
    return server(name).alive()


def is_healthy(name: str) -> bool:
    return server(name).healthy()


def stop(name: str) -> None:
    """Stop the server; its ports and data stay reserved for `start`."""
    srv = server(name)
    srv.stop()
    _record(srv)


def start(name: str, timeout: float | None = None) -> float:
    """Start a stopped server again on its ports; returns seconds until healthy."""
    srv = server(name)
    if not srv.alive():
        srv.start()
        _record(srv)
    return srv.wait_healthy(timeout)


def restart(name: str, timeout: float | None = None) -> float:
    """Stop then start on the same ports and data; returns seconds until healthy."""
    stop(name)
    return start(name, timeout)
