"""The monitoring half: the always-on service and the command line.

Reads what the agents wrote (events, audit records) from Kafka or the embedded
SQLite default into the store, audits it, learns and scores the commerce series,
alerts, and serves the dashboard. It imports the agent's record formats, never the
other way round.
"""
