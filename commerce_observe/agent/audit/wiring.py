"""Wiring the audit trail into an installed runtime: ``attach(runtime) -> detach``.

The runtime calls this once; the trail is then only a hub listener (the Kafka and
RabbitMQ wrappers do not know it exists) plus one background thread. ``detach``
unsubscribes first, so no fact arrives while the writer drains and closes.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.agent.audit.sinks import Sink, SqliteSink
from commerce_observe.agent.audit.spool import Spool, SpoolBusy
from commerce_observe.agent.audit.writer import AuditWriter
from commerce_observe.agent.messaging.facts import MessageFact


def _noop() -> None:
    return None


def choose_sink(config: Any, bootstrap: str | None) -> Sink | None:
    """The configured sink: ``kafka`` needs a bootstrap; ``auto`` is Kafka when one is known."""
    kind = config.audit_sink
    if kind == "none":
        return None
    if kind == "kafka" or (kind == "auto" and bootstrap):
        if not bootstrap:
            stats.warn("audit.no_bootstrap", "audit sink 'kafka' needs bootstrap servers; using SQLite %s", config.audit_path)
        elif importlib.util.find_spec("confluent_kafka") is None:
            # The sink's producer is librdkafka's: a pure-Python one would cost the
            # writer thread several times more per record.
            stats.warn("audit.no_confluent_kafka", "audit sink 'kafka' needs confluent-kafka "
                       "(pip install 'commerce-observe[confluent]'); using SQLite %s", config.audit_path)
        else:
            from commerce_observe.agent.audit.kafka_sink import KafkaSink

            from commerce_observe._internal.kafka_security import KafkaSecurity

            return KafkaSink(bootstrap, config.audit_topic, security=KafkaSecurity.from_config(config))
    return SqliteSink(config.audit_path)


def open_spool(directory: str, **options: Any) -> Spool:
    """This process's spool: the shared directory, or a per-process one when it is taken."""
    try:
        return Spool(directory, **options)
    except SpoolBusy:
        return Spool(os.path.join(directory, f"pid-{os.getpid()}"), **options)


class Attachment:
    """The detach callable ``attach`` returns; ``writer`` is exposed for tests and the demo."""

    def __init__(self, writer: AuditWriter | None, unsubscribe: Callable[[], None]) -> None:
        self.writer = writer
        self._unsubscribe = unsubscribe

    def __call__(self) -> None:
        self._unsubscribe()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def attach(runtime: Any, *, bootstrap: str | None = None, sink: Sink | None = None, **writer_options: Any) -> Attachment:
    """Start writing audit records for every :class:`MessageFact` on ``runtime.hub``.

    ``bootstrap`` is the Kafka cluster for the audit topic (until the configuration
    has a setting for it); ``sink`` overrides the configured one (tests); other
    keyword arguments go to :class:`AuditWriter`. Returns the detach function.
    """
    config = runtime.config
    chosen = sink if sink is not None else choose_sink(config, bootstrap)
    if chosen is None:
        return Attachment(None, _noop)
    writer_options.setdefault("masker", getattr(runtime, "masker", None))
    spool = open_spool(config.spool_dir, max_bytes=config.spool_max_bytes, source=config.service_name)
    writer = AuditWriter(chosen, spool, **writer_options).start()
    unsubscribe = runtime.hub.subscribe(MessageFact, writer.on_fact)
    runtime_dest = getattr(runtime, "destinations", None)
    if isinstance(runtime_dest, list):
        runtime_dest.append(f"audit records to {chosen.name}")
    logger.debug("audit trail attached: sink %s, spool %s", chosen.name, writer.spool.directory if writer.spool else None)
    return Attachment(writer, unsubscribe)
