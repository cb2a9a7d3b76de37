"""The intake ``metadata`` event: who is sending, built once per exporter.

APM Server folds the metadata line into every event of the same request, so it
carries what is constant for the process: service name/version/environment,
agent, language and runtime, process and host identity, and the resource
attributes as global labels. Everything is computed once (no cloud metadata
lookups, no per-request work); the container id comes from Elastic's own cheap
``/proc/self/cgroup`` reader when it is available.

``agent.name`` is ``python``: APM Server accepts any name, but Kibana keys its
language icons and Python-specific views on the agent names it knows, and the
events are written by elastic-apm's Python transport.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from typing import Any

import elasticapm
from opentelemetry.util.types import AttributeValue

from commerce_observe.agent.export.elastic.labels import labels_from, truncate
from commerce_observe.agent.export.elastic.mapping import event_line
from commerce_observe.agent.export.elastic.mapping import service_name as clean_service_name

AGENT_NAME = "python"

#: Resource attributes with a field of their own (not repeated as labels).
_MAPPED_RESOURCE = frozenset(
    {"service.name", "service.version", "deployment.environment", "deployment.environment.name", "service.instance.id"}
)


def _str_attr(resource: Mapping[str, AttributeValue], *keys: str) -> str | None:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, str) and value:
            return truncate(value)
    return None


def _container() -> dict[str, Any]:
    try:
        from elasticapm.utils import cgroup

        found = cgroup.get_cgroup_container_metadata()  # type: ignore[no-untyped-call]
    except Exception:  # a missing or odd /proc is not worth failing the export for
        return {}
    container = found.get("container") if isinstance(found, dict) else None
    if isinstance(container, dict) and isinstance(container.get("id"), str):
        return {"container": {"id": truncate(container["id"])}}
    return {}


def build_metadata(
    service_name: str,
    environment: str | None,
    resource: Mapping[str, AttributeValue] | None,
    global_labels: Mapping[str, AttributeValue] | None = None,
) -> dict[str, Any]:
    """The metadata dict, validated by the tests against ``metadata.json``."""
    res: Mapping[str, AttributeValue] = resource or {}
    service: dict[str, Any] = {
        "name": clean_service_name(service_name),
        "agent": {"name": AGENT_NAME, "version": elasticapm.VERSION},
        "language": {"name": "python", "version": platform.python_version()},
        "runtime": {"name": platform.python_implementation(), "version": platform.python_version()},
    }
    env = truncate(environment) if environment else _str_attr(res, "deployment.environment.name", "deployment.environment")
    if env:
        service["environment"] = env
    version = _str_attr(res, "service.version")
    if version:
        service["version"] = version
    node = _str_attr(res, "service.instance.id")
    if node:
        service["node"] = {"configured_name": node}
    system: dict[str, Any] = {
        "detected_hostname": truncate(socket.gethostname()),
        "architecture": platform.machine(),
        "platform": sys.platform,
    }
    system.update(_container())
    metadata: dict[str, Any] = {
        "service": service,
        "process": {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "title": truncate(os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else sys.executable),
        },
        "system": system,
    }
    # ELASTIC_APM_GLOBAL_LABELS win over resource attributes of the same name
    labels = labels_from({k: v for k, v in res.items() if k not in _MAPPED_RESOURCE} | dict(global_labels or {}))
    if labels:
        metadata["labels"] = labels
    return metadata


def metadata_line(
    service_name: str,
    environment: str | None,
    resource: Mapping[str, AttributeValue] | None,
    global_labels: Mapping[str, AttributeValue] | None = None,
) -> str:
    """The first line of every intake request body (with its newline)."""
    return event_line("metadata", build_metadata(service_name, environment, resource, global_labels))
