"""What the agent reports besides spans and the audit trail.

Listeners of the hub: event documents shipped to a store or the Kafka events topic,
live commerce metrics for Prometheus, and Elastic APM metricsets. Importing this
package starts nothing; ``agent.listeners`` attaches what the settings ask for.
"""

from commerce_observe.agent.reporting.attach import Attachment, attach
from commerce_observe.agent.reporting.live_metrics import LiveMetrics, attach_metrics, prometheus_provider
from commerce_observe.agent.reporting.publisher import KafkaEventPublisher

__all__ = ["Attachment", "KafkaEventPublisher", "LiveMetrics", "attach", "attach_metrics", "prometheus_provider"]
