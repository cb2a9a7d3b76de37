"""``import commerce_observe.auto``: the one import that wires everything.

The only module of the package with an import-time effect: it calls
:func:`commerce_observe.agent.runtime.install_safely`, which reads the ``OTEL_*``,
``ELASTIC_APM_*`` and ``COMMERCE_OBSERVE_*`` environment variables. It never raises
and never blocks: a bad setting is logged once (naming the variable) and its
default used; if wiring fails altogether the application runs uninstrumented.
Call :func:`commerce_observe.install` from code instead to fail fast.
"""

from commerce_observe.agent.runtime import install_safely

runtime = install_safely()
