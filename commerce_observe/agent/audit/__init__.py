"""The audit trail's in-process half: a compact record per message stage, made durable.

Both sides of every message write a record per stage (see
:mod:`commerce_observe.agent.audit.record`) through the writer to a sink (a Kafka
topic or SQLite), spooling locally while the sink is away. The auditor that
reconciles them lives in the monitor (:mod:`commerce_observe.monitor.audit`).
Importing this package starts nothing.
"""

from commerce_observe.agent.audit.record import AuditRecord, decode, encode
from commerce_observe.agent.audit.sinks import MemorySink, SinkUnavailable, SqliteSink
from commerce_observe.agent.audit.spool import Spool
from commerce_observe.agent.audit.wiring import Attachment, attach
from commerce_observe.agent.audit.writer import AuditWriter

__all__ = [
    "Attachment", "AuditRecord", "AuditWriter", "MemorySink", "SinkUnavailable", "Spool", "SqliteSink", "attach",
    "decode", "encode",
]
