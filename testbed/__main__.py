"""`python -m testbed up|down|fetch|status|env`: the test bed's command line.

`up` starts the servers in parallel threads (their start-up is mostly JVM and Erlang
boot time, so parallel start is what keeps the wall time short), writes
`.cache/testbed/endpoints.json` and prints `export NAME=value` lines on stdout; all
progress goes to stderr so that `eval "$(python -m testbed up)"` works.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from testbed import SERVICES
from testbed.base import ENDPOINTS_FILE, Server, TestbedError, exported, read_state, state, write_endpoints


_PORT_TAKEN = re.compile(r"address already in use|eaddrinuse|BindException", re.IGNORECASE)


def _say(message: str) -> None:
    print(f"testbed: {message}", file=sys.stderr, flush=True)


def _parallel(names: list[str], work: Callable[[str], str]) -> dict[str, Exception]:
    """Run `work(name)` for every name at once; return the failures by name."""
    errors: dict[str, Exception] = {}
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        futures = {name: pool.submit(work, name) for name in names}
        for name, future in futures.items():
            try:
                _say(future.result())
            except Exception as exc:  # reported below with the server's log tail
                errors[name] = exc
    return errors


def _exports(endpoints: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(endpoints.items()))


def cmd_fetch(names: list[str]) -> int:
    def fetch(name: str) -> str:
        began = time.monotonic()
        SERVICES[name]().fetch()
        return f"{name} fetched in {time.monotonic() - began:.1f}s"

    errors = _parallel(names, fetch)
    for name, exc in errors.items():
        _say(f"{name} fetch FAILED: {exc}")
    return 1 if errors else 0


def _stop_recorded(names: list[str]) -> None:
    with state() as data:
        for name in names:
            if name in data:
                SERVICES[name].from_state(data.pop(name)).stop()
        write_endpoints(data)


def cmd_up(names: list[str]) -> int:
    _stop_recorded(names)  # leftovers of an earlier run that was never brought down
    began = time.monotonic()
    started: dict[str, Server] = {}

    def up(name: str) -> str:
        t0 = time.monotonic()
        SERVICES[name]().fetch()
        t1 = time.monotonic()
        for attempt in range(1, 4):
            srv = SERVICES[name]()  # fresh ports on every attempt
            srv.prepare()
            srv.start()
            started[name] = srv
            with state() as data:
                data[name] = srv.to_state()
            try:
                waited = srv.wait_healthy()
                break
            except TestbedError as exc:
                # Another process may have bound a port between our pick and the bind.
                if attempt == 3 or not _PORT_TAKEN.search(str(exc)):
                    raise
                _say(f"{name}: a port was taken meanwhile; retrying on new ports")
                srv.stop()
        return (f"{name} healthy at {srv.endpoint()} (fetch {t1 - t0:.1f}s, "
                f"start {time.monotonic() - t1:.1f}s, of which health wait {waited:.1f}s)")

    errors = _parallel(names, up)
    if errors:
        for name, exc in errors.items():
            _say(f"{name} FAILED: {exc}")
        _say("stopping the servers this run started")
        _stop_recorded(list(started))
        return 1
    with state() as data:
        endpoints = write_endpoints(data)
    _say(f"all of {', '.join(names)} up in {time.monotonic() - began:.1f}s; endpoints in {ENDPOINTS_FILE}")
    sys.stdout.write(_exports(endpoints))
    return 0


def cmd_down(names: list[str]) -> int:
    _stop_recorded(names)
    _say(f"stopped {', '.join(names)}")
    return 0


def cmd_status(names: list[str]) -> int:
    data = read_state()
    for name in names:
        entry = data.get(name)
        if entry is None:
            print(f"{name}: not started")
            continue
        srv = SERVICES[name].from_state(entry)
        print(f"{name}: pid={srv.pid} {'healthy' if srv.healthy() else 'NOT healthy'} {srv.endpoint()}")
    return 0


def cmd_env(names: list[str]) -> int:
    data = {k: v for k, v in read_state().items() if k in names}
    sys.stdout.write(_exports(exported(data.values())))
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "up": cmd_up, "down": cmd_down, "fetch": cmd_fetch, "status": cmd_status, "env": cmd_env,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--services", default=",".join(SERVICES),
                        help="comma-separated subset of: " + ", ".join(SERVICES))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.services.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        parser.error(f"unknown services {unknown}; known: {list(SERVICES)}")
    try:
        return COMMANDS[args.command](names)
    except TestbedError as exc:
        _say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
