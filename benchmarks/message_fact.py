"""What building a :class:`MessageFact` by keyword costs on the message hot path.

    .venv/bin/python benchmarks/message_fact.py

Three ways to build the same fact, interleaved, best of 40 runs of 20,000: the
class called positionally (the old form, the baseline), the class called with
keywords (``type.__call__`` packs them into a dict for ``__init__``), and
:func:`~commerce_observe.agent.messaging.facts.message_fact` called with keywords,
the form the producer and consumer use. Two or three facts are built per message.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commerce_observe.agent.messaging.facts import MessageFact, Stage, message_fact  # noqa: E402

S = Stage.HANDLED


def positional(n: int) -> None:
    for _ in range(n):
        MessageFact(S, "kafka", "orders", "e1", "t", "src", 1, "tid", "sid", 123, 0, 5, "g", 100, None, None, None)


def class_keywords(n: int) -> None:
    for _ in range(n):
        MessageFact(stage=S, system="kafka", destination="orders", event_id="e1", event_type="t", source="src",
                    sequence=1, trace_id="tid", span_id="sid", time_ns=123, partition=0, offset=5,
                    consumer_group="g", published_ns=100, error=None)


def function_keywords(n: int) -> None:
    for _ in range(n):
        message_fact(stage=S, system="kafka", destination="orders", event_id="e1", event_type="t", source="src",
                     sequence=1, trace_id="tid", span_id="sid", time_ns=123, partition=0, offset=5,
                     consumer_group="g", published_ns=100, error=None)


def main() -> None:
    runs: dict[str, Callable[[int], None]] = {"MessageFact(positional)": positional,
                                              "MessageFact(keywords)": class_keywords,
                                              "message_fact(keywords)": function_keywords}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(40):
        for name, run in runs.items():
            start = time.perf_counter()
            run(20_000)
            best[name] = min(best[name], (time.perf_counter() - start) / 20_000 * 1e9)
    base = best["MessageFact(positional)"]
    for name, ns in best.items():
        print(f"{name:26s} {ns:7.0f} ns/fact  {ns / base:5.2f}x")


if __name__ == "__main__":
    main()
