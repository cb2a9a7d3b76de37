"""One list of sensitive keys: docs/privacy.md, the code and the configuration agree."""

from __future__ import annotations

import re
from pathlib import Path

from commerce_observe.agent.privacy import DEFAULT_SENSITIVE_KEYS, Masker
from commerce_observe.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_docs_list_the_keys_the_code_uses() -> None:
    text = (ROOT / "docs" / "privacy.md").read_text()
    found = re.search(r"Defaults: `([^`]+)`", text)
    assert found, "docs/privacy.md lost its 'Defaults: `...`' list"
    documented = [name.strip() for name in found.group(1).replace("\n", " ").split(",")]
    assert documented == list(DEFAULT_SENSITIVE_KEYS)


def test_the_runtime_default_is_that_list() -> None:
    config = load_config({})
    assert tuple(config.sensitive_fields) == tuple(DEFAULT_SENSITIVE_KEYS)
    assert Masker(config.sensitive_fields).sensitive_keys == Masker().sensitive_keys
