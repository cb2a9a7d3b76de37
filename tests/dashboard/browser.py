"""Headless Chromium for the dashboard tests: load a page, read its rendered DOM or take a screenshot.

Chromium comes from Debian's ``chromium`` package (installed by the test command,
never by a test). The window is 1400x1000, the size the page must fit its urgent
panels into. Numbers are read from the rendered DOM (``--dump-dom`` after the page's
fetches ran, under a virtual-time budget); the page writes every drawn value, and
where each panel landed (``data-top``/``data-bottom``), as attributes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
WINDOW = (1400, 1000)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is missing: install Debian's 'chromium' package (apt-get install -y chromium)")


def run_chromium(url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    run_chromium(url, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 20_000
    return shot


class Page(HTMLParser):
    """The rendered page: every element's attributes and text, grouped by the <section> it is in."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.panel: str | None = None
        self.sections: dict[str, dict[str, str]] = {}
        self.body: dict[str, str] = {}
        self.elements: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
        self.text: dict[str, list[str]] = defaultdict(list)
        self.feed(dom)
        assert 'data-state="ok"' in dom, dom[:3000]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if tag == "section":
            self.panel = a.get("id")
            if self.panel:
                self.sections[self.panel] = a
        if self.panel:
            self.elements[self.panel].append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.panel = None

    def handle_data(self, data: str) -> None:
        if self.panel and data.strip():
            self.text[self.panel].append(data.strip())

    def find(self, panel: str, attr: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements[panel] if attr in a and (tag is None or t == tag)]

    def bars(self, panel: str) -> list[tuple[str, int]]:
        return [(a["data-key"], int(a["data-value"])) for a in self.find(panel, "data-key")]

    def series(self, panel: str) -> dict[str, float]:
        return {a["data-series"]: float(a["data-total"]) for a in self.find(panel, "data-series", "g")}

    def bottom(self, panel: str) -> int:
        return int(self.sections[panel]["data-bottom"])

    def viewport(self) -> tuple[int, int]:
        width, height = self.body["data-viewport"].split("x")
        return int(width), int(height)
