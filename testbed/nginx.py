"""Elasticsearch behind TLS with credentials: Debian's nginx in front of the test bed's node.

The integ-test distribution of Elasticsearch has no security module, so the test bed
puts a real TLS-terminating proxy in front of it: nginx (Debian package) with a
certificate from the test bed's own CA (`tls.py`), answering 401 unless the request
carries the basic-auth user below or the API key below, and forwarding the rest to the
plain node. It needs the `elasticsearch` server of the same test bed (it waits for its
entry in the state file while `up` starts both).
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request

from testbed.base import LOOPBACK, Launch, Server, TestbedError, minimal_env, read_state
from testbed.tls import make_pki

USERNAME, PASSWORD = "shop-es", "es-secret-1"
API_KEY = base64.b64encode(b"testbed-key-id:testbed-key-secret").decode()

_CONF = """\
{user}worker_processes 1;
error_log {workdir}/error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  map_hash_bucket_size 256;
  client_body_temp_path {workdir}/tmp/body;
  proxy_temp_path {workdir}/tmp/proxy;
  fastcgi_temp_path {workdir}/tmp/fastcgi;
  uwsgi_temp_path {workdir}/tmp/uwsgi;
  scgi_temp_path {workdir}/tmp/scgi;
  map $http_authorization $es_auth_ok {{
    default 0;
    "Basic {basic}" 1;
    "ApiKey {api_key}" 1;
  }}
  server {{
    listen {host}:{port} ssl;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    client_max_body_size 200m;
    location / {{
      if ($es_auth_ok = 0) {{
        add_header WWW-Authenticate 'Basic realm="elasticsearch"' always;
        return 401;
      }}
      proxy_pass http://{host}:{es_port};
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
"""


def _nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found is None:
        raise TestbedError("nginx is missing: install Debian's nginx package (scripts/test.sh does)")
    return found


def _es_port(timeout_s: float = 1500.0) -> int:
    """The port of this test bed's Elasticsearch, once `up` recorded it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entry = read_state().get("elasticsearch")
        if entry and entry.get("pid"):
            return int(entry["ports"]["port"])
        time.sleep(0.5)
    raise TestbedError("es_tls needs the elasticsearch server of the same test bed (start both with `up`)")


class EsTls(Server):
    name = "es_tls"
    env_var = "COMMERCE_OBSERVE_TEST_ES_TLS_URL"
    start_timeout = 360.0  # Elasticsearch itself must come up behind it

    def fetch(self) -> None:
        _nginx()

    def prepare(self) -> None:
        super().prepare()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True)
        pki = make_pki(self.workdir / "tls")
        basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        (self.workdir / "nginx.conf").write_text(_CONF.format(
            user="user root;\n" if os.geteuid() == 0 else "", workdir=self.workdir, basic=basic, api_key=API_KEY,
            host=LOOPBACK, port=self.port, crt=pki.server_crt, key=pki.server_key, es_port=_es_port()))

    def launch(self) -> Launch:
        argv = [_nginx(), "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf"), "-g", "daemon off;"]
        return Launch(argv=argv, env=minimal_env(), cwd=self.workdir)

    def endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def exports(self) -> dict[str, str]:
        return {
            self.env_var: self.endpoint(),
            "COMMERCE_OBSERVE_TEST_ES_TLS_CA_FILE": str(self.workdir / "tls" / "ca.pem"),
            "COMMERCE_OBSERVE_TEST_ES_TLS_USERNAME": USERNAME,
            "COMMERCE_OBSERVE_TEST_ES_TLS_PASSWORD": PASSWORD,
            "COMMERCE_OBSERVE_TEST_ES_TLS_API_KEY": API_KEY,
        }

    def probe(self) -> bool:
        """TLS verified with our CA, credentials checked, and the node behind it answering."""
        context = ssl.create_default_context(cafile=str(self.workdir / "tls" / "ca.pem"))
        try:
            urllib.request.urlopen(self.endpoint(), timeout=2, context=context)
            return False  # no credentials must not pass
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                return False
        request = urllib.request.Request(f"{self.endpoint()}/_cluster/health", headers={"Authorization": f"ApiKey {API_KEY}"})
        with urllib.request.urlopen(request, timeout=2, context=context) as resp:
            return bool(resp.status == 200)
