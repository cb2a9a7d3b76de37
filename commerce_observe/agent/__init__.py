"""The in-process agent: what a service imports.

``install()`` builds one runtime here (config, tracer provider, exporters, hub,
instrumentors); integrations report facts to its hub, and tracing, the audit trail
and reporting listen. Nothing here imports the monitoring half
(:mod:`commerce_observe.monitor`); both share :mod:`commerce_observe.store`'s
document shapes and :mod:`commerce_observe.config`'s one registry.
"""
