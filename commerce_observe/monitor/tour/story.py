"""``commerce-observe tour``: the headline features, one after the other, on the
embedded defaults (SQLite store and audit file, a Zipkin JSON trace file).

1. Three months of hourly sales, as a warehouse exports them, go in with
   ``commerce-observe import`` (the espresso's product page broke 6 hours ago).
2. The shop runs: order, payment and notification services, each order one trace;
   the notification consumer crashes twice, once after handling (a duplicate) and
   once after committing (a loss). Events and audit records go to SQLite.
3. ``commerce-observe watch`` learns the history, replays the last hours as if live
   (``--from``/``--until``, the same code path as the always-on service), finds the
   lost and duplicated events by id, scores every product hour, and sends its alerts
   to a webhook, here one the tour itself listens on.
4. The dashboard serves it all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BROKEN_HOURS = 6


class Webhook:
    """A local HTTP receiver that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        bodies: list[Any] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    bodies.append(json.loads(raw))
                except ValueError:
                    bodies.append(raw.decode("utf-8", "replace"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commerce_observe", *args], capture_output=True, text=True,
                          check=False)


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _command() -> str:
    """How to run commerce-observe from here: its name when that is on PATH, else this
    interpreter's script (./scripts/demo.sh installs into .venv, which is not on PATH)."""
    script = Path(sys.executable).parent / "commerce-observe"
    found = shutil.which("commerce-observe")
    if found and Path(found).resolve() == script.resolve():
        return "commerce-observe"
    if not script.exists():
        return f"{sys.executable} -m commerce_observe"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _rules(path: Path, webhook: str) -> None:
    path.write_text(json.dumps({
        "bucket_seconds": 3600,
        "rules": [
            {"type": "anomaly", "name": "product-sales", "series": "orders:*", "threshold": 75},
            {"type": "audit", "name": "lost-or-duplicated", "kinds": ["LOST", "DUPLICATE"]},
        ],
        "notifiers": [{"type": "webhook", "url": webhook}],
        "throttle": {"max": None},
    }), encoding="utf-8")


def run_shop(out: Path, orders: int) -> Any:
    """The shop's services in this process, instrumented by ``install()``."""
    import commerce_observe as co
    from commerce_observe.monitor.tour.shop import Shop

    co.install(service_name="tour-shop", audit_sink="sqlite", audit_path=str(out / "audit.sqlite"),
               event_store=f"sqlite:{out / 'store.db'}", output_file=str(out / "traces.json"))
    shop = Shop()
    for n in range(1, orders + 1):
        shop.order(n)
    shop.payments()
    # the consumer crashes at a third and at two thirds of the payments' log
    shop.notifications(duplicate_at=orders // 3, lose_at=2 * orders // 3)
    co.shutdown()
    return shop.out


def tour(out: Path, *, orders: int = 40, serve: bool = False, port: int = 0) -> int:
    from commerce_observe.monitor.tour.history import write_orders_csv
    from commerce_observe.monitor.tour.shop import BROKEN, PRODUCTS

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    store = f"sqlite:{out / 'store.db'}"
    now = datetime.now(timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0)

    _say("1. History: 90 days of hourly sales, as a warehouse exports them")
    csv = out / "orders-history.csv"
    rows = write_orders_csv(csv, PRODUCTS, hour, broken=BROKEN, broken_hours=BROKEN_HOURS)
    done = _cli("import", str(csv), "--store", store)
    if done.returncode != 0:
        _say(f"   import failed: {done.stderr.strip()}")
        return 1
    _say(f"   commerce-observe import {csv.name}: {rows:,} rows ({BROKEN}'s page broke {BROKEN_HOURS} h ago)")

    _say(f"2. The shop: {orders} orders through order, payment and notification services")
    result = run_shop(out, orders)
    _say(f"   {result.paid} paid, {sum(result.failures.values())} failed "
         f"({', '.join(f'{k} {v}' for k, v in result.failures.most_common())})")
    _say(f"   the notification consumer crashed twice: after handling {result.duplicated[0]}, "
         f"after committing {result.lost[0]}")
    _say(f"   traces: {out / 'traces.json'} (the Zipkin UI opens it with 'Upload JSON'; each trace id below is one order)")

    _say("3. commerce-observe watch: learn the history, replay the last hours as if live")
    hook = Webhook()
    try:
        rules = out / "rules.json"
        _rules(rules, hook.url)
        until = datetime.now(timezone.utc) + timedelta(minutes=2)
        started = time.monotonic()
        done = _cli("watch", "--store", store, "--audit-sqlite", str(out / "audit.sqlite"), "--rules", str(rules),
                    "--state", str(out / "watch-state"), "--no-http", "--grace", "5s", "--bucket", "1h",
                    "--from", (hour - timedelta(hours=BROKEN_HOURS + 2)).isoformat(), "--until", until.isoformat())
        if done.returncode != 0:
            _say(f"   watch failed: {done.stderr.strip()}")
            return 1
        _say(f"   done in {time.monotonic() - started:.1f} s")
        _report_findings(out)
        _report_alerts(hook.bodies)
    finally:
        hook.close()

    _say("4. The dashboard: the day's sales, payment failures by reason, the anomaly, the lost and duplicated events")
    url = f"http://127.0.0.1:{port or 8050}/?minutes=1440"
    command = [sys.executable, "-m", "commerce_observe", "dashboard", "--store", store, "--port", str(port or 8050)]
    if not serve:
        _say(f"   {_command()} dashboard --store {store} --port {port or 8050}, then open {url}")
        return 0
    _say(f"   {url}   (Ctrl-C stops it)")
    with subprocess.Popen(command, stdout=subprocess.DEVNULL) as proc:
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return 0
    if code != 0:  # it said why on stderr (a busy port, most often)
        _say(f"   the dashboard did not start; another port: ./scripts/demo.sh --port N, "
             f"or {_command()} dashboard --store {store} --port N")
    return code


def _report_findings(out: Path) -> None:
    from commerce_observe.store import TimeRange, open_store

    store = open_store(f"sqlite:{out / 'store.db'}")
    try:
        end = datetime.now(timezone.utc) + timedelta(hours=1)
        findings = store.findings(TimeRange.of(end - timedelta(days=1), end))
    finally:
        store.close()
    for f in findings:
        _say(f"   {f.kind:<10} event {f.event_id}  order {f.order_id or '-'}  trace {f.trace_id}")
    if not findings:
        _say("   no findings stored")


def _report_alerts(bodies: list[Any]) -> None:
    """One line per notification the webhook received, with what each alert measured."""
    for body in bodies:
        if not isinstance(body, dict):
            continue
        _say(f"   webhook received: [{body.get('kind')}] {body.get('title')}")
        for alert in body.get("alerts", []):
            details = "; ".join(str(d) for d in alert.get("details", [])[:2])
            _say(f"      {alert.get('measure')}" + (f" ({details})" if details else ""))
    if not bodies:
        _say("   the webhook received nothing")
