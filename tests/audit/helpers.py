"""Build audit lines for one event at a time, the way the writer would encode them."""

from __future__ import annotations

from commerce_observe.agent.audit.record import encode
from commerce_observe.agent.messaging.facts import MessageFact, Stage

S = 1_000_000_000  # one second in ns
T0 = 1_750_000_000 * S


class Ev:
    """An event on ``topic``: methods return the line for each stage at ``T0 + dt`` seconds."""

    def __init__(self, eid: str, seq: int | None = None, topic: str = "orders", source: str = "checkout",
                 etype: str = "order.created", order_id: str | None = None, at: float = 0.0) -> None:
        self.eid, self.seq, self.topic, self.source, self.etype = eid, seq, topic, source, etype
        self.order_id = order_id or f"ord-{eid}"
        self.trace = (eid.encode().hex() + "0" * 32)[:32]
        self.at = T0 + int(at * S)

    def _fact(self, stage: Stage, dt: float, **kw: object) -> bytes:
        # as in the product: only the producer's records know the order id, a consumer's do not
        order_id = self.order_id if stage.role == "producer" else None
        return encode(MessageFact(stage, "kafka", self.topic, self.eid, self.etype, self.source, self.seq,
                                  self.trace, kw.pop("span", "p" * 16), self.at + int(dt * S),  # type: ignore[arg-type]
                                  order_id=order_id, **kw))  # type: ignore[arg-type]

    def published(self, dt: float = 0.0) -> bytes:
        return self._fact(Stage.PUBLISHED, dt)

    def acked(self, dt: float = 0.005, partition: int = 0) -> bytes:
        return self._fact(Stage.ACKED, dt, partition=partition, offset=self.seq or 1)

    def send_failed(self, dt: float = 0.03) -> bytes:
        return self._fact(Stage.SEND_FAILED, dt, error="KafkaTimeoutError: 30s")

    def handled(self, group: str, dt: float = 0.02, span: str = "c" * 16, pub: bool = True) -> bytes:
        return self._fact(Stage.HANDLED, dt, consumer_group=group, span=span, partition=0, offset=self.seq or 1,
                          published_ns=self.at if pub else None)

    def handle_failed(self, group: str, dt: float = 0.02, span: str = "e" * 16) -> bytes:
        return self._fact(Stage.HANDLE_FAILED, dt, consumer_group=group, span=span, published_ns=self.at, error="boom")

    def ok(self, *groups: str) -> list[bytes]:
        """Published, acked and handled once by every group."""
        return [self.published(), self.acked(), *(self.handled(g, 0.02 + i * 0.001, span=f"{i:016x}") for i, g in enumerate(groups))]


def tick(at: float) -> bytes:
    """A harmless event far in stream time, to move the watermark."""
    e = Ev(f"tick-{at}", at=at)
    return e.published()
