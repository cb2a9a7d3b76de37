"""Start the example shop, drive N orders through it, print what happened.

    python -m examples.run_all [--orders 20] [--kafka 127.0.0.1:9092] [--out DIR]

Each service runs as its own process with ``import commerce_observe.auto``, so
each reads the usual settings from the environment: set
``OTEL_EXPORTER_ZIPKIN_ENDPOINT`` and/or ``ELASTIC_APM_SERVER_URL`` to send the
traces there. With neither set, each service writes the embedded default, a
Zipkin JSON file in ``--out`` (open it in the Zipkin UI with "Upload JSON").

Kafka has no embedded default: with ``--kafka`` the journey is order service →
Kafka → payment service → Kafka → notification consumer; without it, the order
service calls the payment service over HTTP and no notifications are sent (the
runner says so). Either way, each order is one trace.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

SERVICES = ("order-service", "payment-service", "notification-service")
PRODUCTS = [("sku-espresso", "8.90"), ("sku-grinder", "129.00"), ("sku-filter", "4.50"), ("sku-mug", "12.00")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Shop:
    """The three services as subprocesses; stopped with SIGTERM so they flush."""

    def __init__(self, out: Path, kafka: str | None, prefix: str, seed: int) -> None:
        self.out, self.kafka, self.prefix, self.seed = out, kafka, prefix, seed
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.order_url = self.payment_url = ""
        self.notifications = out / "notifications.jsonl"

    def _env(self, service: str) -> dict[str, str]:
        env = dict(os.environ, OTEL_SERVICE_NAME=service, PYTHONUNBUFFERED="1")
        env.setdefault("COMMERCE_OBSERVE_OUTPUT_FILE", "")
        if not env["COMMERCE_OBSERVE_OUTPUT_FILE"]:
            env["COMMERCE_OBSERVE_OUTPUT_FILE"] = str(self.out / f"{service}-traces.json")
        else:  # one file per service: three processes must not rewrite one file
            env["COMMERCE_OBSERVE_OUTPUT_FILE"] = str(self.out / f"{service}-{Path(env['COMMERCE_OBSERVE_OUTPUT_FILE']).name}")
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        return env

    def _start(self, service: str, module: str, *args: str) -> None:
        log = open(self.out / f"{service}.log", "wb")
        self.procs[service] = subprocess.Popen([sys.executable, "-m", module, *args], env=self._env(service),
                                               stdout=log, stderr=subprocess.STDOUT)

    def create_topics(self) -> None:
        """Create both topics before any consumer subscribes: a consumer subscribed
        to a topic that does not exist yet sees it only at its next metadata refresh
        (minutes), so auto-creation by the first send would race the consumers."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        from examples.common import ORDERS, PAYMENTS, topic

        admin = KafkaAdminClient(bootstrap_servers=self.kafka, client_id="example-runner")
        try:
            for name in (ORDERS, PAYMENTS):
                try:
                    admin.create_topics([NewTopic(topic(self.prefix, name), num_partitions=3, replication_factor=1)])
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    def describe_groups(self) -> str:
        """The consumer groups' state, members and assignments, for a shortfall message."""
        from kafka import KafkaAdminClient

        groups = [f"{self.prefix}.{service}" for service in SERVICES[1:]]
        admin = KafkaAdminClient(bootstrap_servers=self.kafka, client_id="example-runner")
        try:  # kafka-python 3 names it describe_groups, 2 describe_consumer_groups
            describe = getattr(admin, "describe_groups", None) or admin.describe_consumer_groups
            return repr(describe(groups))
        except Exception as exc:
            return f"cannot describe {groups}: {exc!r}"
        finally:
            admin.close()

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.kafka:
            self.create_topics()
        pay_port, order_port = free_port(), free_port()
        self.payment_url, self.order_url = f"http://127.0.0.1:{pay_port}", f"http://127.0.0.1:{order_port}"
        kafka = ["--kafka", self.kafka, "--topic-prefix", self.prefix] if self.kafka else []
        self._start("payment-service", "examples.payment_service", "--port", str(pay_port), "--seed", str(self.seed), *kafka)
        self._start("order-service", "examples.order_service", "--port", str(order_port),
                    "--payment-url", self.payment_url, *kafka)
        if self.kafka:
            self._start("notification-service", "examples.notification_consumer", *kafka, "--log", str(self.notifications))
        for url in (self.payment_url, self.order_url):
            self._wait(f"{url}/health")

    def _wait(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if call("GET", url, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with {proc.returncode}; see {self.out / (name + '.log')}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up in {timeout:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                print(f"{name} did not stop in 30s and was killed: its last spans may be lost", file=sys.stderr)


def drive(shop: Shop, orders: int, rng: random.Random) -> list[dict[str, Any]]:
    placed = []
    for n in range(orders):
        items = [{"product_id": p, "quantity": rng.randint(1, 3), "unit_price": price}
                 for p, price in rng.sample(PRODUCTS, rng.randint(1, 3))]
        status, answer = call("POST", f"{shop.order_url}/orders",
                              {"customer_ref": f"cust-{rng.randint(1, 500):04d}", "items": items})
        if status != 200:
            raise SystemExit(f"order {n} failed with HTTP {status}: {answer}")
        placed.append(answer)
    return placed


def outcomes(shop: Shop, placed: list[dict[str, Any]], timeout: float = 60) -> dict[str, dict[str, Any]]:
    """Each order's payment, asked of the payment service (with Kafka it comes later)."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(placed) and time.monotonic() < deadline:
        for order in placed:
            if order["order_id"] not in found:
                status, payment = call("GET", f"{shop.payment_url}/payments/by-order/{order['order_id']}")
                if status == 200:
                    found[order["order_id"]] = payment
        time.sleep(0.2)
    return found


def wait_notifications(shop: Shop, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = len(shop.notifications.read_text().splitlines()) if shop.notifications.exists() else 0
        if count >= expected:
            break
        time.sleep(0.2)
    return count


def summary(shop: Shop, placed: list[dict[str, Any]], paid: dict[str, dict[str, Any]], notified: int | None) -> dict[str, Any]:
    reasons = collections.Counter(p.get("reason") for p in paid.values() if p.get("status") == "failed")
    return {
        "mode": "kafka" if shop.kafka else "http-only",
        "orders": len(placed),
        "payments_captured": sum(1 for p in paid.values() if p.get("status") == "captured"),
        "payments_failed": dict(reasons),
        "payments_missing": len(placed) - len(paid),
        "notifications": notified,
        "traces": {o["order_id"]: o["trace_id"] for o in placed},
        "trace_files": sorted(str(p) for p in shop.out.glob("*-traces.json")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the example shop and drive orders through it.")
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--kafka", help="Kafka bootstrap servers (no embedded default: without it, HTTP only)")
    parser.add_argument("--out", type=Path, default=Path("commerce-observe-example"))
    parser.add_argument("--topic-prefix", default=None, help="default: a fresh prefix per run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = parser.parse_args(argv)
    prefix = args.topic_prefix or f"shop-{uuid.uuid4().hex[:8]}"
    if not args.kafka:
        print("no --kafka given: running the HTTP-only path (order → payment over HTTP); "
              "no notifications are sent", file=sys.stderr)
    shop = Shop(args.out.resolve(), args.kafka, prefix, args.seed)
    try:
        shop.start()
        placed = drive(shop, args.orders, random.Random(args.seed))
        paid = outcomes(shop, placed)
        notified = wait_notifications(shop, len(paid)) if args.kafka else None
        if notified is not None and notified < len(paid):
            print(f"only {notified} of {len(paid)} notifications; consumer groups: {shop.describe_groups()}",
                  file=sys.stderr)
    finally:
        shop.stop()
    result = summary(shop, placed, paid, notified)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['orders']} orders ({result['mode']}): {result['payments_captured']} paid, "
              f"failed {result['payments_failed'] or 'none'}, missing {result['payments_missing']}, "
              f"notifications {result['notifications'] if notified is not None else 'n/a (no Kafka)'}")
        where = [v for v in ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "ELASTIC_APM_SERVER_URL") if os.environ.get(v)]
        print("traces sent to " + ", ".join(os.environ[v] for v in where) if where
              else "traces written to " + ", ".join(result["trace_files"]))
        first = next(iter(result["traces"].items()), None)
        if first:
            print(f"e.g. order {first[0]} is trace {first[1]}")
    return 0 if result["payments_missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
