"""Today's detector, for figures measured beside the new one in the same run.

``baseline_tree(rev)`` unpacks the package as it was at git revision ``rev`` (by
default the commit before issue 14's detector work) into a temporary directory;
run it in a child interpreter with ``PYTHONPATH`` set to that directory, so the
old and the new code never share a process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: main before issue 14 (the detector the issue measured)
BASELINE_REV = "80b8592"


def baseline_tree(rev: str = BASELINE_REV) -> Path:
    # cached by commit id, not by the name given: ``--baseline main`` must not reuse the
    # copy of an older main
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:  # a mistyped --baseline: one line, no traceback
        raise SystemExit(f"{Path(sys.argv[0]).name}: --baseline {rev!r} is not a commit of {ROOT}")
    commit = found.stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"commerce_observe_baseline_{commit}"
    if not (dest / "commerce_observe").is_dir():
        data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "commerce_observe"],
                              check=True, capture_output=True).stdout
        tmp = Path(tempfile.mkdtemp(dir=dest.parent))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp, dest)
    return dest


def env_for(tree: Path) -> dict[str, str]:
    """Environment for a child interpreter that imports ``commerce_observe`` from ``tree``."""
    return {**os.environ, "PYTHONPATH": str(tree)}
