"""``commerce-observe watch``: the monitoring half running by itself, all the time.

The auditor, the anomaly detector and the alert engine, driven by one loop over
the audit trail and the store (see :mod:`.loop`), with a checkpoint so a restart
continues where it stopped, and a backtest that runs the same loop over a stored
period. See docs/watch.md. Importing this package starts nothing.
"""
