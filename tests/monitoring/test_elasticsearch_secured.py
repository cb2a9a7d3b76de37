"""The Elasticsearch store through the official client, against Elasticsearch behind
TLS with credentials.

The test bed's Elasticsearch (the integ-test distribution) has no security module, so
these tests reach it through a real TLS-terminating proxy with authentication: Debian's
nginx (testbed/nginx.py) with a certificate from the test bed's CA, refusing requests
without the right basic-auth user or API key. Verified by a CA file or by the
certificate's fingerprint; credentials from arguments, from the URL, or from the
COMMERCE_OBSERVE_ES_* settings; several nodes with one of them down.
"""

from __future__ import annotations

import hashlib
import ssl
import urllib.parse
import uuid

import pytest

from commerce_observe.store.es_client import EsError
from commerce_observe.store.es_store import ElasticsearchStore
from commerce_observe.store.store import open_store
from testbed.base import free_port
from tests.monitoring import dataset

pytestmark = pytest.mark.elasticsearch


def stream() -> str:
    return f"logs-commerce.events-t{uuid.uuid4().hex[:10]}"


def round_trip(store: ElasticsearchStore) -> None:
    docs = dataset.documents()[:20]
    try:
        assert store.write(docs).written == len(docs)
        store.refresh()
        assert store.http.request("GET", f"/{store.data_stream}/_count")["count"] == len(docs)
    finally:
        store.close()


def test_basic_auth_and_a_ca_file(elasticsearch_tls: dict[str, str]) -> None:
    tls = elasticsearch_tls
    round_trip(ElasticsearchStore(tls["url"], data_stream=stream(), username=tls["username"],
                                  password=tls["password"], ca_certs=tls["ca_file"]))


def test_api_key_and_a_certificate_fingerprint(elasticsearch_tls: dict[str, str]) -> None:
    tls = elasticsearch_tls
    parts = urllib.parse.urlsplit(tls["url"])
    pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443))
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    round_trip(ElasticsearchStore(tls["url"], data_stream=stream(), api_key=tls["api_key"],
                                  ssl_assert_fingerprint=fingerprint))


def test_credentials_in_the_url_settings_and_several_nodes(elasticsearch_tls: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes, the first one down: the client fails over. The user and password ride
    in the URL (they used to be dropped); the CA file comes from the settings."""
    tls = elasticsearch_tls
    monkeypatch.setenv("COMMERCE_OBSERVE_ES_CA_CERTS", tls["ca_file"])
    live = urllib.parse.urlsplit(tls["url"])
    url = (f"https://127.0.0.1:{free_port()},"
           f"https://{tls['username']}:{tls['password']}@{live.hostname}:{live.port}")
    store = open_store(url, data_stream=stream())
    assert isinstance(store, ElasticsearchStore) and len(store.http.nodes) == 2
    round_trip(store)


def test_a_wrong_password_is_refused_by_the_proxy(elasticsearch_tls: dict[str, str]) -> None:
    tls = elasticsearch_tls
    with pytest.raises(EsError) as refused:
        ElasticsearchStore(tls["url"], data_stream=stream(), username=tls["username"], password="wrong",
                           ca_certs=tls["ca_file"])
    assert refused.value.status == 401
