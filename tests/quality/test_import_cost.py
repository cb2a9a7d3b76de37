"""`import commerce_observe` stays free: no library it instruments is imported."""

import subprocess
import sys

HEAVY = ("kafka", "confluent_kafka", "aiokafka", "pika", "flask", "django", "starlette", "numpy", "elasticapm", "py_zipkin")


def test_plain_import_pulls_in_no_instrumented_library() -> None:
    code = "import sys, commerce_observe; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
