"""Interop fixtures: the Brave peer's jars, fetched once with Maven into the
git-ignored ``.cache/java-peer/libs`` (a missing JDK or Maven fails the tests;
nothing here skips)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBS = ROOT / ".cache" / "java-peer" / "libs"
JAVA_DIR = Path(__file__).resolve().parent / "java"
REQUIRED = ("brave-6.3.1.jar", "brave-instrumentation-kafka-clients-6.3.1.jar", "kafka-clients-3.9.1.jar",
            "zipkin-reporter-brave-3.5.3.jar", "zipkin-sender-urlconnection-3.5.3.jar")


@pytest.fixture(scope="session")
def brave_libs() -> Path:
    if not all((LIBS / jar).exists() for jar in REQUIRED):
        LIBS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mvn", "-B", "-q", "-f", str(JAVA_DIR / "pom.xml"), "dependency:copy-dependencies",
                        f"-DoutputDirectory={LIBS}"], check=True, timeout=600)
    missing = [jar for jar in REQUIRED if not (LIBS / jar).exists()]
    assert not missing, f"Maven did not fetch {missing}"
    return LIBS


@pytest.fixture(scope="session")
def brave_peer(brave_libs: Path) -> Callable[..., list[str]]:
    """Run ``BravePeer.java`` with arguments; returns the words of its last output line."""

    def run(*args: str) -> list[str]:
        out = subprocess.run(["java", "-cp", f"{brave_libs}/*", str(JAVA_DIR / "BravePeer.java"), *args],
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        assert lines, out.stderr[-3000:]
        return lines[-1].split()

    return run
