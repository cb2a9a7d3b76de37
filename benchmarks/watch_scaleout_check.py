"""Several watches in one group, one SIGKILLed: ``tests/watch/test_scaleout.py`` run several times in a row.

Run against a test bed (the shared one, or ``python -m testbed up --services kafka,elasticsearch``
and its exports), from the repository root:

    python -m pytest -p tests.conftest benchmarks/watch_scaleout_check.py

The test it repeats is in the CI suite. It used to fail in about one run of three with two
members: the lost-event alert never came. One auditor judged every partition a member held
against one watermark (the newest record time read from any of them), and an event opens its
grace window at the watermark when it is read. When a poll returned a partition with newer
records before the one holding the loss (or a partition was read again after a rebalance),
the lost event opened its window at that newer time and was judged only after one more grace
period of newer records. The test writes its data ahead of the wall clock and waits for the
alert before writing more, so nothing moved the watermark again (live, the wall clock would
have, a grace period late). Each audit partition now has its own auditor (docs/watch.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.watch.test_scaleout import test_members_share_and_take_over as one_run

RUNS = 5


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("members", [2, 3])
def test_members_share_and_take_over_again_and_again(run: int, members: int, kafka_bootstrap: str,
                                                    elasticsearch_url: str, unique_topic: str, tmp_path: Path) -> None:
    one_run(members, kafka_bootstrap, elasticsearch_url, unique_topic, tmp_path)
