"""Root fixtures: strict mode for every test, and the test bed's real servers.

The servers are started by `scripts/test.sh` (`python -m testbed up`), which exports
their endpoints as COMMERCE_OBSERVE_TEST_* variables; without those, the endpoints
written by `python -m testbed up` are read from the test bed's endpoints.json. A
server that is missing or does not answer fails the test that needs it: never a skip,
so a broken test bed cannot pass as a green run.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

os.environ["COMMERCE_OBSERVE_STRICT"] = "true"

from commerce_observe._internal.selfstats import stats
from tests.support.waiting import wait_for


@pytest.fixture(autouse=True)
def _strict_stats() -> Iterator[None]:
    """Strict mode: any internal error reaches the test; counters start at zero."""
    stats.reset()
    old = stats.strict
    stats.strict = True
    yield
    stats.strict = old


def _endpoint(env_var: str) -> str:
    value = os.environ.get(env_var)
    if value:
        return value
    from testbed.base import ENDPOINTS_FILE

    if ENDPOINTS_FILE.exists():
        value = json.loads(ENDPOINTS_FILE.read_text()).get(env_var)
        if value:
            return str(value)
    pytest.fail(f"{env_var} is not set and {ENDPOINTS_FILE} has no entry: run the tests with "
                "`bash scripts/test.sh`, or start servers with `python -m testbed up`", pytrace=False)


def _wait_listening(env_var: str, url: str, timeout: float = 15.0) -> None:
    """Short readiness wait: the port must accept a TCP connection."""
    from testbed.base import LOG_DIR

    parts = urllib.parse.urlsplit(url if "://" in url else f"tcp://{url}")
    address = (parts.hostname or "127.0.0.1", parts.port or 0)

    def refused() -> OSError | None:
        try:
            socket.create_connection(address, timeout=2).close()
            return None
        except OSError as exc:
            return exc

    try:
        wait_for(f"{env_var}={url} to answer", refused, timeout, 0.2, until=lambda error: error is None,
                 describe=lambda error: f"{error}; server logs: {LOG_DIR}")
        return
    except AssertionError as exc:
        failure = str(exc)
    pytest.fail(failure, pytrace=False)  # the message says it all: no traceback


def _server_fixture(env_var: str) -> Callable[[], str]:
    def fixture() -> str:
        url = _endpoint(env_var)
        _wait_listening(env_var, url)
        return url

    fixture.__doc__ = f"The endpoint in {env_var}, checked to be answering."
    return fixture


zipkin_url = pytest.fixture(scope="session", name="zipkin_url")(
    _server_fixture("COMMERCE_OBSERVE_TEST_ZIPKIN_URL"))
kafka_bootstrap = pytest.fixture(scope="session", name="kafka_bootstrap")(
    _server_fixture("COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP"))
elasticsearch_url = pytest.fixture(scope="session", name="elasticsearch_url")(
    _server_fixture("COMMERCE_OBSERVE_TEST_ELASTICSEARCH_URL"))
rabbitmq_url = pytest.fixture(scope="session", name="rabbitmq_url")(
    _server_fixture("COMMERCE_OBSERVE_TEST_RABBITMQ_URL"))
otlp_http_endpoint = pytest.fixture(scope="session", name="otlp_http_endpoint")(
    _server_fixture("COMMERCE_OBSERVE_TEST_OTLP_HTTP_ENDPOINT"))
otlp_grpc_endpoint = pytest.fixture(scope="session", name="otlp_grpc_endpoint")(
    _server_fixture("COMMERCE_OBSERVE_TEST_OTLP_GRPC_ENDPOINT"))
otlp_query_url = pytest.fixture(scope="session", name="otlp_query_url")(
    _server_fixture("COMMERCE_OBSERVE_TEST_OTLP_QUERY_URL"))


@pytest.fixture(scope="session")
def kafka_sasl_ssl() -> dict[str, str]:
    """The broker's SASL_SSL listener: bootstrap, CA file, client certificate and key,
    and the SCRAM/PLAIN user the test bed created (keys as in testbed/kafka.py's exports)."""
    names = ("SASL_SSL_BOOTSTRAP", "CA_FILE", "CLIENT_CERT", "CLIENT_KEY", "SASL_USERNAME", "SASL_PASSWORD")
    values = {name.lower(): _endpoint(f"COMMERCE_OBSERVE_TEST_KAFKA_{name}") for name in names}
    _wait_listening("COMMERCE_OBSERVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP", values["sasl_ssl_bootstrap"])
    return values


@pytest.fixture(scope="session")
def elasticsearch_tls() -> dict[str, str]:
    """Elasticsearch behind the test bed's nginx (TLS from its own CA, basic auth or API
    key): ``url``, ``ca_file``, ``username``, ``password``, ``api_key``."""
    names = ("URL", "CA_FILE", "USERNAME", "PASSWORD", "API_KEY")
    values = {name.lower(): _endpoint(f"COMMERCE_OBSERVE_TEST_ES_TLS_{name}") for name in names}
    _wait_listening("COMMERCE_OBSERVE_TEST_ES_TLS_URL", values["url"])
    return values


@pytest.fixture(scope="session")
def otlp_tls() -> dict[str, str]:
    """The test bed's OTLP receiver over TLS (Jaeger, certificate from its own CA):
    ``http_endpoint``, ``grpc_endpoint`` (server authentication only),
    ``mtls_http_endpoint``, ``mtls_grpc_endpoint`` (a client certificate required),
    ``query_url``, ``ca_file``, ``client_cert``, ``client_key``."""
    names = ("HTTP_ENDPOINT", "GRPC_ENDPOINT", "MTLS_HTTP_ENDPOINT", "MTLS_GRPC_ENDPOINT", "QUERY_URL",
             "CA_FILE", "CLIENT_CERT", "CLIENT_KEY")
    values = {name.lower(): _endpoint(f"COMMERCE_OBSERVE_TEST_OTLP_TLS_{name}") for name in names}
    for name in names[:4]:
        _wait_listening(f"COMMERCE_OBSERVE_TEST_OTLP_TLS_{name}", values[name.lower()])
    return values


@pytest.fixture(scope="session")
def testbed_control() -> ModuleType:
    """`testbed.control`: stop(name), start(name), restart(name), is_healthy(name), endpoint(name).

    start/restart wait until the server is healthy again, on the same port and data.
    """
    from testbed import control

    return control


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A Kafka topic name no other test (or earlier run) uses; auto-created on first use."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return f"t-{stem}-{uuid.uuid4().hex[:10]}"
