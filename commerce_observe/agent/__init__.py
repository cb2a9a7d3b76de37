"""The in-process agent: what a service imports.

``install()`` builds one runtime here (config, tracer provider, exporters,
instrumentors) and one :class:`~commerce_observe.agent.state.AgentState` that owns
everything mutable (hub, registries, propagation policy, clusters seen); each
instrumentor is handed that state when enabled and passes it down, so nothing below
the runtime reads a module global. Integrations report facts to the state's hub;
the audit trail and reporting listen. Nothing here imports the monitoring half
(:mod:`commerce_observe.monitor`); both share :mod:`commerce_observe.store`'s
document shapes and :mod:`commerce_observe.config`'s one registry.
"""
