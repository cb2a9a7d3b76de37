"""``import commerce_observe.auto``: the one import that wires everything.

The only module of the package with an import-time effect: it calls
:func:`commerce_observe.install`, which reads the ``OTEL_*``, ``ELASTIC_APM_*`` and
``COMMERCE_OBSERVE_*`` environment variables. Invalid settings raise
:class:`commerce_observe.ConfigError` naming the variable.
"""

from commerce_observe.agent.runtime import install

runtime = install()
