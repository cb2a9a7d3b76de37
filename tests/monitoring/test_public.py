"""The package surface: every exported name exists, and importing it pulls in no client library."""

from __future__ import annotations

import subprocess
import sys

import commerce_observe.store as monitoring


def test_all_names_exist() -> None:
    assert all(hasattr(monitoring, name) for name in monitoring.__all__)
    assert sorted(monitoring.__all__) == monitoring.__all__


def test_import_loads_no_kafka_or_prometheus() -> None:
    code = ("import sys, commerce_observe.store, commerce_observe.monitor.dashboard; "
            "print([m for m in sys.modules if m.split('.')[0] in ('kafka', 'prometheus_client')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
