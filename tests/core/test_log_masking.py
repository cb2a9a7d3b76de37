"""Logs: sensitive values are masked in our logs and in the application's."""

import io
import logging

from commerce_observe.testing import capture


def test_application_and_library_logs_are_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with capture():
            logging.getLogger("shop.checkout").error("charge %s for %s failed", "4111 1111 1111 1111", "ann@example.com")
            logging.getLogger("commerce_observe").warning("call +49 170 1234567 back")
        logging.getLogger("shop.checkout").error("after shutdown 5500 0000 0000 0004")
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert "4111 1111 1111 1111" not in lines[0] and "ann@example.com" not in lines[0]
    assert "[CARD ****1111]" in lines[0] and "[EMAIL]" in lines[0]
    assert "1234567" not in lines[1]
    assert "5500 0000 0000 0004" in lines[2], "the filter is removed at shutdown"


def test_handlers_configured_after_install_are_masked_too() -> None:
    with capture():
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s %(customer)s"))
        logger = logging.getLogger("shop.late")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning("call 010-1234-5678 or %s", "https://bob:hunter2@psp.example/pay",
                           extra={"customer": "ann@example.com"})
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
    line = stream.getvalue()
    assert "1234-5678" not in line and "hunter2" not in line and "ann@example.com" not in line
    assert "[PHONE]" in line and "[CREDENTIALS]" in line and "[EMAIL]" in line
