"""Elastic APM intake v2 encoding (``mapping``, ``metadata``, ``labels``, ``classify``)
and elastic-apm's transport (``transport``). The exporter is
:class:`commerce_observe.agent.export.elastic_apm.ElasticApmExporter`."""
