"""The audit trail: find each lost, duplicated or late event by id, with its trace.

Both sides of every message write a compact record per stage (see
:mod:`commerce_observe.audit.record`); the streaming :class:`Auditor` reconciles
producers against each consumer group and names the events that went wrong, with
links into Zipkin and Kibana APM. Importing this package starts nothing.
"""

from commerce_observe.audit.auditor import Auditor
from commerce_observe.audit.findings import Finding, Handling, Kind, Links
from commerce_observe.audit.record import AuditRecord, decode, encode
from commerce_observe.audit.sinks import MemorySink, SinkUnavailable, SqliteSink
from commerce_observe.audit.spool import Spool
from commerce_observe.audit.wiring import Attachment, attach
from commerce_observe.audit.writer import AuditWriter

__all__ = [
    "Attachment", "AuditRecord", "AuditWriter", "Auditor", "Finding", "Handling", "Kind", "Links",
    "MemorySink", "SinkUnavailable", "Spool", "SqliteSink", "attach", "decode", "encode",
]
