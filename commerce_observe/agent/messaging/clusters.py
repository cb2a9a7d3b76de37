"""The Kafka cluster this process talks to, as its clients were configured.

The audit trail goes to a topic on that same cluster by default
(``COMMERCE_OBSERVE_AUDIT_SINK=auto``, no ``COMMERCE_OBSERVE_AUDIT_BOOTSTRAP``): the
client wrappers note the bootstrap servers of the first Kafka producer or consumer
they see, before that client's first message fact is emitted, and the audit trail,
started by that fact, reads them here. One :class:`KafkaClusters` per agent state
(``AgentState.kafka``), so it goes away with the agent.
"""

from __future__ import annotations


def _as_bootstrap(servers: object) -> str | None:
    if isinstance(servers, str):
        return servers.strip() or None
    if isinstance(servers, (list, tuple)):
        parts = [s.strip() for s in servers if isinstance(s, str) and s.strip()]
        return ",".join(parts) or None
    return None


class KafkaClusters:
    """The bootstrap servers of the first Kafka client one agent saw."""

    __slots__ = ("first",)

    def __init__(self) -> None:
        self.first: str | None = None

    def note(self, servers: object) -> None:
        """Remember ``servers`` (a bootstrap string or list) if none were noted yet."""
        if self.first is None:
            self.first = _as_bootstrap(servers)

    def bootstrap(self) -> str | None:
        """The bootstrap servers of the first Kafka client seen, if any."""
        return self.first
