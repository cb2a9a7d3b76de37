"""A stand-in APM Server for tests: records intake v2 events and validates them.

No APM Server can run here (its Go module cannot be installed), so, as Elastic's
own agents do in their test suites, the tests send real requests to this small
receiver and validate every event against the official intake v2 JSON schemas:
``tests/support/specs/elastic-apm-intake-v2/`` is an unchanged copy (Apache-2.0,
see its SOURCE.md and LICENSE) of the workplace's ``../shared/specs/`` folder, kept
in the repository so the tests run from a clone anywhere. Like APM Server, the
receiver answers ``202 Accepted`` to ``POST /intake/v2/events`` (gzip or deflate
NDJSON, metadata line first) and ``400`` with the reasons when an event is invalid.
It can be told to answer an error status or to stop listening, to test failures.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from opentelemetry.trace import SpanKind
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from commerce_observe.agent.export.record import SpanRecord

SPEC_DIR = Path(__file__).resolve().parent / "specs" / "elastic-apm-intake-v2"
EVENT_TYPES = ("metadata", "transaction", "span", "error", "metricset")
INTAKE_PATH = "/intake/v2/events"


class IntakeSchemas:
    """Validators for each intake event type, built from the official schema files.

    Draft 7 semantics: ``error.json`` uses ``if``/``then`` (a ``transaction_id``
    requires ``parent_id`` and ``trace_id``), which Draft 4 would silently skip.
    ``$ref``s between the files resolve through one registry keyed by ``$id``.
    """

    def __init__(self, spec_dir: Path = SPEC_DIR) -> None:
        missing = [t for t in EVENT_TYPES if not (spec_dir / f"{t}.json").is_file()]
        if missing:
            raise FileNotFoundError(
                f"Elastic APM intake v2 schemas missing in {spec_dir}: {', '.join(missing)}.json "
                "(the copy kept in the repository)"
            )
        schemas = {t: json.loads((spec_dir / f"{t}.json").read_text()) for t in EVENT_TYPES}
        resources = [(s["$id"], Resource.from_contents(s, default_specification=DRAFT7)) for s in schemas.values()]
        registry: Registry[Any] = Registry().with_resources(resources)
        self.validators = {t: Draft7Validator(s, registry=registry) for t, s in schemas.items()}

    def errors(self, event_type: str, data: Any) -> list[str]:
        validator = self.validators.get(event_type)
        if validator is None:
            return [f"unknown event type {event_type!r}"]
        return [f"{event_type}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]

    def check(self, event_type: str, data: Any) -> None:
        """Raise ``AssertionError`` listing every schema violation of one event."""
        problems = self.errors(event_type, data)
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + json.dumps(data, indent=1, default=str)[:4000])


@dataclass
class IntakeRequest:
    """One POST as received: headers, and the events in order as (type, data)."""

    path: str
    headers: Mapping[str, str]
    events: list[tuple[str, dict[str, Any]]]
    problems: list[str] = field(default_factory=list)


def _decompressed(body: bytes, encoding: str | None) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error):
        pass
    return body


def parse_ndjson(body: bytes, encoding: str | None) -> list[tuple[str, dict[str, Any]]]:
    body = _decompressed(body, encoding)
    events = []
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if not isinstance(obj, dict) or len(obj) != 1:
            raise ValueError(f"an intake line holds exactly one event: {line[:200]}")
        ((event_type, data),) = obj.items()
        events.append((event_type, data))
    return events


class IntakeReceiver:
    """HTTP receiver on 127.0.0.1 (ephemeral port); use as a context manager."""

    def __init__(self, schemas: IntakeSchemas | None = None, port: int = 0) -> None:
        self.schemas = schemas or IntakeSchemas()
        self.requests: list[IntakeRequest] = []
        #: Every request body as received (decompressed): what left the process, byte for byte.
        self.bodies: list[bytes] = []
        self.status = 202  # what to answer next; set 503 to simulate an unhealthy server
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            def do_GET(self) -> None:  # server information, as APM Server answers it
                self._reply(200, {"version": "8.15.0", "build_flavor": "default"})

            def _reply(self, status: int, payload: Any | None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="apm-intake", daemon=True
        )
        self._thread.start()

    def _handle(self, handler: Any, body: bytes) -> None:
        path = handler.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if path != INTAKE_PATH:
            handler._reply(404, {"error": f"unknown path {path}"})
            return
        request = IntakeRequest(path=handler.path, headers=headers, events=[])
        self.bodies.append(_decompressed(body, headers.get("content-encoding")))
        try:
            request.events = parse_ndjson(body, headers.get("content-encoding"))
        except Exception as exc:
            request.problems.append(f"unreadable body: {exc!r}")
        if request.events and request.events[0][0] != "metadata":
            request.problems.append("first event is not metadata")
        for event_type, data in request.events:
            request.problems.extend(self.schemas.errors(event_type, data))
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        if self.status >= 400:
            handler._reply(self.status, {"error": "simulated failure"})
        elif request.problems:
            handler._reply(400, {"accepted": 0, "errors": [{"message": p} for p in request.problems[:20]]})
        else:
            handler._reply(202, None)

    # --- what tests read ----------------------------------------------------------

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [d for r in self.requests for t, d in r.events if event_type in (None, t)]

    def problems(self) -> list[str]:
        with self._cond:
            return [p for r in self.requests for p in r.problems]

    def wait_for(self, event_type: str, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` events of a type arrived; fail (not skip) otherwise."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._matching(event_type)) >= count, timeout_s)
            found = self._matching(event_type)
        if not ok:
            raise AssertionError(f"expected {count} {event_type} event(s), received {len(found)}")
        return found

    def _matching(self, event_type: str) -> list[dict[str, Any]]:
        return [d for r in self.requests for t, d in r.events if t == event_type]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> IntakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_all(receiver: IntakeReceiver) -> Iterator[tuple[str, dict[str, Any]]]:
    for request in receiver.requests:
        yield from request.events


# --- span records for exporter tests ----------------------------------------------

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def span_record(**overrides: Any) -> SpanRecord:
    """A :class:`SpanRecord` with sensible defaults (a sampled root INTERNAL span)."""
    fields: dict[str, Any] = {
        "trace_id": 0x0AF7651916CD43DD8448EB211C80319C,
        "span_id": 0xB7AD6B7169203331,
        "parent_span_id": None,
        "parent_is_remote": False,
        "transaction_id": None,
        "name": "work",
        "kind": SpanKind.INTERNAL,
        "start_ns": T0_NS,
        "end_ns": T0_NS + 25_000_000,
        "attributes": {},
        "events": (),
        "error": False,
        "status_description": None,
        "sampled": True,
        "service_name": "checkout",
        "resource": {},
        "scope_name": "tests",
    }
    fields.update(overrides)
    if fields["transaction_id"] is None:
        fields["transaction_id"] = fields["span_id"]
    return SpanRecord(**fields)
