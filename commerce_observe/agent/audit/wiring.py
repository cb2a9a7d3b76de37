"""Wiring the audit trail into an installed runtime: ``attach(runtime) -> detach``.

The runtime calls this once, at install; the trail is then only hub listeners (the
Kafka and RabbitMQ wrappers do not know it exists: they report message facts and
checkpoints) plus one background thread. ``detach`` unsubscribes first, so no fact
arrives while the writer drains and closes.

The journal starts at once; the sink may be chosen later (:class:`SinkChosenLater`:
with ``auto``, by the first message), records waiting in the spool meanwhile. A
spool left by an earlier process of this service is replayed: the shared folder by
whoever locks it next, and the ``pid-*`` folders of dead processes (their lock is
free) are adopted at start.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from commerce_observe._internal.selfstats import logger, stats
from commerce_observe.agent.audit.sinks import Sink, SinkUnavailable, SqliteSink
from commerce_observe.agent.audit.spool import Spool, SpoolBusy
from commerce_observe.agent.audit.writer import AuditWriter
from commerce_observe.agent.messaging.clusters import KafkaClusters
from commerce_observe.agent.messaging.facts import Checkpoint, MessageFact
from commerce_observe.agent.messaging.semconv import KAFKA


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


class SinkChosenLater:
    """The configured sink, once it can be chosen: ``auto`` (or ``kafka`` with no
    bootstrap setting) waits for the first message to know the Kafka cluster (or that
    there is none: ``clusters``, the agent's record of the cluster its clients use).
    Until :attr:`ready`, the writer keeps everything in the spool."""

    def __init__(self, config: Any, bootstrap: str | None, clusters: KafkaClusters | None = None) -> None:
        self.config = config
        self.clusters = clusters
        self.bootstrap = bootstrap or config.audit_bootstrap
        self.topic: str | None = config.audit_topic if config.audit_sink in ("auto", "kafka") else None
        self.system: str | None = None  # of the first message fact
        self.sink: Sink | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.sink.name if self.sink is not None else str(self.config.audit_sink)

    @property
    def outlives_host(self) -> bool:
        return bool(getattr(self.sink, "outlives_host", False))

    def note(self, fact: MessageFact) -> None:
        if self.system is None:
            self.system = fact.system

    def ready(self) -> bool:
        """Choose the sink if it can be chosen now; True once it is."""
        if self.sink is not None:
            return True
        with self._lock:
            kind = self.config.audit_sink
            if self.sink is None and (kind == "sqlite" or self.bootstrap or self.system is not None):
                seen = self.clusters.bootstrap() if self.clusters is not None and self.system == KAFKA else None
                bootstrap = self.bootstrap or seen
                self.sink = choose_sink(self.config, bootstrap)
                if self.sink is not None and getattr(self.sink, "topic", None) is None:
                    self.topic = None
        return self.sink is not None

    def write(self, lines: Sequence[bytes]) -> None:
        if not self.ready() or self.sink is None:
            raise SinkUnavailable("audit sink not chosen yet", lines)
        self.sink.write(lines)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def open_spool(directory: str, **options: Any) -> Spool:
    """This process's spool: the shared directory, or a per-process one when it is
    taken; the ``pid-*`` folders of dead processes are adopted into it."""
    try:
        spool = Spool(directory, **options)
    except SpoolBusy:
        spool = Spool.claim(directory, f"pid-{os.getpid()}", **options)
    _adopt_dead(spool, directory)
    return spool


def _adopt_dead(spool: Spool, root: str) -> None:
    try:
        names = [n for n in os.listdir(root) if n.startswith("pid-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        if os.path.abspath(path) == os.path.abspath(spool.directory):
            continue
        try:
            other = Spool.take_dead(path)
        except (SpoolBusy, OSError):
            continue  # passed on to another adopter meanwhile
        if other is None:
            continue  # a live process's, taken by another adopter, or no spool folder (no .lock in it)
        try:
            moved = spool.adopt(other)
            if moved:
                stats.incr("audit.spool_adopted", moved)
        finally:
            other.close()
            other.remove()


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
    if sink is None and config.audit_sink == "none":
        return Attachment(None, _noop)
    writer_options.setdefault("masker", getattr(runtime, "masker", None))
    state = getattr(runtime, "state", None)
    later = SinkChosenLater(config, bootstrap, state.kafka if state is not None else None) if sink is None else None
    chosen: Sink = sink if sink is not None else later  # type: ignore[assignment]
    spool = open_spool(config.spool_dir, max_bytes=config.spool_max_bytes, source=config.service_name)
    writer = AuditWriter(chosen, spool, **writer_options).start()
    hub = runtime.hub
    unsubscribers = [hub.subscribe(MessageFact, writer.on_fact), hub.subscribe(Checkpoint, writer.on_checkpoint)]
    if later is not None and not later.ready():
        def first(fact: MessageFact) -> None:  # tells the sink which system; then no longer listens
            later.note(fact)
            unsubscribe_first()
            writer.wake()

        unsubscribe_first = hub.subscribe(MessageFact, first)
        unsubscribers.append(unsubscribe_first)

    def unsubscribe() -> None:
        for undo in unsubscribers:
            undo()

    runtime_dest = getattr(runtime, "destinations", None)
    if isinstance(runtime_dest, list) and (later is None or later.sink is not None):  # else named once chosen
        runtime_dest.append(f"audit records to {chosen.name}")
    logger.debug("audit trail attached: sink %s, spool %s", chosen.name, writer.spool.directory if writer.spool else None)
    return Attachment(writer, unsubscribe)
