"""A throw-away certificate authority for the test bed's TLS listeners, made with openssl.

`make_pki(folder)` writes, each time a server is prepared: `ca.pem` (the CA that
clients trust), `server.pem` (an unencrypted PKCS#8 key followed by the certificate
for 127.0.0.1 and localhost, and the CA: a PEM keystore that Kafka and nginx read),
`server.key`/`server.crt` (the same, split), and `client.key`/`client.crt` (a client
certificate signed by the same CA, for mutual TLS).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.base import TestbedError


@dataclass(frozen=True)
class Pki:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_pem(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def server_crt(self) -> Path:
        return self.folder / "server.crt"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"

    @property
    def client_crt(self) -> Path:
        return self.folder / "client.crt"


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise TestbedError("openssl is not on PATH (Debian package 'openssl')")
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise TestbedError(f"openssl {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(folder)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "30", "-subj", "/CN=commerce-observe test bed CA", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=commerce-observe-client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                 "-subj", subject, cwd=folder)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{who}.crt", "-days", "30", "-extfile", f"{who}.ext", cwd=folder)
    # PKCS#8 key first, then the chain: Kafka's PEM keystore wants exactly that
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.pk8", cwd=folder)
    pki.server_pem.write_text((folder / "server.pk8").read_text() + pki.server_crt.read_text() + pki.ca.read_text())
    for path in folder.iterdir():
        path.chmod(0o644)  # servers running as another user read them
    return pki
