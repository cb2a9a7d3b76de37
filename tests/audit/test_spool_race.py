"""Services that start together in one working directory each get a spool folder.

CI saw it: the example shop's three services started at once, the shared spool was
taken, and one service's fresh ``pid-*`` folder was adopted and deleted by another
between its creation and its lock ("not installed ... No such file or directory:
'.commerce-observe-spool/pid-13957'"). A ``pid-*`` folder is only ever seen locked
while its process lives, so only a dead process's folder is adopted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from commerce_observe.agent.audit.spool import Spool, read_spool

CHILD = """
import os, sys, time
from commerce_observe.agent.audit.record import trail_gap_line
from commerce_observe.agent.audit.wiring import open_spool
root, go, done = sys.argv[1], float(sys.argv[2]), sys.argv[3]
while time.time() < go:
    pass
spool = open_spool(root)
spool.append([trail_gap_line(1, 2, os.getpid(), None)])  # a valid record, one per process
spool.sync()
print(os.path.basename(spool.directory), flush=True)
while not os.path.exists(done):
    time.sleep(0.01)
"""


def test_services_starting_together_each_keep_their_own_folder(tmp_path: Path) -> None:
    root = str(tmp_path / "spool")
    held = Spool(root)  # the shared folder is taken: every child makes a pid-* folder
    done = tmp_path / "done"
    try:
        for _ in range(5):
            go = time.time() + 1.5
            children = [subprocess.Popen([sys.executable, "-c", CHILD, root, str(go), str(done)], text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
            folders = [child.stdout.readline().strip() for child in children]  # type: ignore[union-attr]
            alive = {f for f in os.listdir(root) if f.startswith("pid-")}
            done.touch()
            errors = [child.communicate(timeout=30)[1] for child in children]
            done.unlink()
            assert [e for e in errors if e] == []
            assert sorted(folders) == sorted(f"pid-{child.pid}" for child in children)
            assert set(folders) <= alive, "a live process's folder was taken from it"
        # the dead ones' lines are all still there, ready to be adopted
        lines = [line for batch in read_spool(root) for line in batch]
        assert len(lines) == 5 * 8
    finally:
        held.close()
