"""The architecture as the folders show it: two halves, and a README table that lists every folder."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "commerce_observe"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_agent_module_imports_the_monitor() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.startswith("commerce_observe.monitor"))
        for path in (PACKAGE / "agent").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_store_imports_no_half() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path)
                                            if m.startswith(("commerce_observe.monitor", "commerce_observe.agent.runtime")))
        for path in (PACKAGE / "store").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _package_folders() -> set[str]:
    folders = {"commerce_observe/"}
    for path in PACKAGE.rglob("*"):
        if path.is_dir() and path.name != "__pycache__" and any(path.iterdir()):
            folders.add(str(path.relative_to(ROOT)) + "/")
    return folders


def test_the_readme_layout_table_lists_every_folder() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+/)`", section, flags=re.M))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top = {name.split("/", 1)[0] + "/" for name in tracked
           if "/" in name and not name.startswith((".", "commerce_observe/"))}
    assert listed == _package_folders() | top
