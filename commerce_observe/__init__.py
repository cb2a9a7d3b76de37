"""commerce_observe: order and payment events observable end to end.

Importing this package has no side effects. ``install()`` (or
``import commerce_observe.auto``) builds the one runtime; ``shutdown()`` undoes it.
"""
