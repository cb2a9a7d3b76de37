"""``commerce-observe dashboard``: the commerce monitoring page on a local port.

Reads the embedded SQLite store by default (the file the direct writer fills),
or Elasticsearch with ``--elasticsearch URL``; nothing is fetched from the
internet, so it works on a laptop with nothing installed.
"""

from __future__ import annotations

import argparse
import sys

from commerce_observe.monitor.cli._store import add_store_args, open_store_from
from commerce_observe.monitor.cli.errors import UsageError, port, seconds
from commerce_observe.monitor.cli.trace_links import add_trace_link_options


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("dashboard", help="serve the commerce monitoring dashboard",
                              description="Headline numbers, open alerts, anomalies per product and payment "
                                          "method, lost/duplicated/late events with trace links and payment "
                                          "failures on one screen; sales trend (revenue = value of orders "
                                          "placed), orders and payments, top products and latency below.")
    add_store_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port, default=8050, help="port to listen on (0: any free port)")
    add_trace_link_options(p)
    p.add_argument("--refresh", type=seconds, default=5.0, help="seconds between page refreshes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from commerce_observe.config import load_config
    from commerce_observe.monitor.dashboard import Dashboard

    config = load_config()
    store = open_store_from(args)
    try:
        app = Dashboard(store, host=args.host, port=args.port, zipkin_url=args.zipkin_url or config.zipkin_ui,
                        kibana_url=args.kibana_url or config.kibana_url, refresh_s=args.refresh)
    except OSError as exc:
        store.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    sys.stderr.write(f"commerce_observe: dashboard at {app.url} (Ctrl-C to stop)\n")
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        store.close()
    return 0
