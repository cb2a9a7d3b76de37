"""The auditor: find each lost, duplicated or late event by id, with its trace.

The streaming :class:`Auditor` reconciles the producers' audit records against each
consumer group's and names the events that went wrong, with links into Zipkin and
Kibana APM. Importing this package starts nothing.
"""

from commerce_observe.monitor.audit.auditor import Auditor
from commerce_observe.monitor.audit.findings import Finding, Handling, Kind, Links

__all__ = ["Auditor", "Finding", "Handling", "Kind", "Links"]
