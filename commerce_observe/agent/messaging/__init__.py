"""Messaging: what the Kafka and RabbitMQ integrations record, and the two calls
applications use to make it exact.

* ``with publishing(event): producer.send(...)`` ties the messages sent in the
  block to a domain event (its id becomes ``ce_id``).
* ``with handling(record): ...`` marks the handler's work on a consumed record,
  so "handled" means the handler finished; :func:`defer` for work done later.

The client wrappers themselves live in ``commerce_observe.agent.instrumentation``.
"""

from commerce_observe.agent.messaging.handling import defer, handling
from commerce_observe.agent.messaging.facts import MessageFact, Stage
from commerce_observe.agent.messaging.producer import current_event, publishing

__all__ = ["MessageFact", "Stage", "current_event", "defer", "handling", "publishing"]
