"""A small shop made observable with ``import commerce_observe.auto``: an order
service (FastAPI), a payment service (Flask) and a notification consumer
(kafka-python), talking over HTTP and Kafka. Start them all with
``python -m examples.run_all`` (see examples/README.md)."""
