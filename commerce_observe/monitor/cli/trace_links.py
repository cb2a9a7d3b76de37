"""The trace-link options every sub-command that shows findings takes, spelled once.

``--zipkin-url`` and ``--kibana-url`` are the names; ``--zipkin-ui`` and ``--kibana``
(what ``watch`` and ``alerts evaluate`` called them first) are accepted too.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from commerce_observe.monitor.cli.errors import url

if TYPE_CHECKING:
    from commerce_observe.monitor.audit.findings import Links


def add_trace_link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zipkin-url", "--zipkin-ui", dest="zipkin_url", type=url, metavar="URL",
                   help="Zipkin UI base URL for trace links (default COMMERCE_OBSERVE_ZIPKIN_UI_URL, "
                        "else from the Zipkin endpoint)")
    p.add_argument("--kibana-url", "--kibana", dest="kibana_url", type=url, metavar="URL",
                   help="Kibana base URL for Elastic APM trace links (default COMMERCE_OBSERVE_KIBANA_URL)")


def trace_links(args: argparse.Namespace, zipkin_ui: str | None, kibana_url: str | None) -> Links:
    """The links of ``args``' options, else of the configuration's ``zipkin_ui`` and ``kibana_url``."""
    from commerce_observe.monitor.audit.findings import Links  # loaded when a command runs, not when it parses

    return Links(args.zipkin_url or zipkin_ui, args.kibana_url or kibana_url)
