"""Auditor throughput and peak memory on 1,000,000 audit records, against a naive baseline.

    .venv/bin/python benchmarks/auditor.py [--records 1000000] [--out /tmp/co-audit-bench]
                                           [--before TREE [--rounds 3]]

``--before TREE`` also runs the auditor of another checkout of the project (e.g.
``git archive main | tar -x -C /tmp/before``) on the same input, alternating with
ours, and prints the before/after ratio of the best rounds and the median of the
ratios of each pair of neighbouring rounds (steadier on a busy machine): a change's
cost measured in one run, on one machine state.

Both contenders read their own on-disk encoding from a file in 1 MiB chunks, so
parsing is part of the measurement:

* ours: tab-separated audit lines -> streaming :class:`Auditor` (grace-window
  eviction), exactly what ``commerce-observe audit --file`` runs;
* baseline: the same records as JSON lines -> ``json.loads`` per line -> a dict per
  event, reconciled at the end (what one writes first; memory grows with history).

Throughput is records per CPU second of the one process (one core; the wall-clock
rate is printed too, and is lower when other work shares the machine). Each run is
a fresh subprocess so its peak RSS (``VmHWM``) is its own. The
flatness check runs ours on growing prefixes of the history: peak memory must stay
flat because the state is bounded by rate x grace, not by the number of records.
The input is a realistic mix (synth.generate: 2 topics, 5 groups, retries, 0.2%
faults of every kind, arrival jitter as from a partitioned topic).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks._timing import run_child  # noqa: E402
from commerce_observe.monitor.audit.auditor import Auditor  # noqa: E402
from commerce_observe.agent.audit.record import FIELDS, decode  # noqa: E402
from commerce_observe.monitor.audit.sources import iter_batches  # noqa: E402

GRACE_S, SLA_S, RATE = 10.0, 5.0, 5000.0


def prepare(out: str, records: int) -> tuple[str, str]:
    """Write the lines file and its JSON-lines twin once (cached by size)."""
    from commerce_observe.monitor.audit.synth import generate

    lines_path, json_path = f"{out}/audit-{records}.lines", f"{out}/audit-{records}.jsonl"
    if os.path.exists(lines_path) and os.path.exists(json_path):
        return lines_path, json_path
    os.makedirs(out, exist_ok=True)
    lines, _ = generate(int(records / 4.75) + 1, rate_per_s=RATE, fault_rate=0.002, seed=1)
    lines = lines[:records]
    with open(lines_path + ".tmp", "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    with open(json_path + ".tmp", "w") as fh:
        for line in lines:
            r = decode(line)
            row = {name: getattr(r, name) for name in FIELDS}
            row["stage"] = r.stage.value
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
    os.replace(lines_path + ".tmp", lines_path)
    os.replace(json_path + ".tmp", json_path)
    return lines_path, json_path


def run_ours(path: str, limit: int) -> dict[str, float]:
    gc.disable()  # as the CLI does: the state holds no cycles
    t0, c0 = time.perf_counter(), time.process_time()
    a = Auditor(grace_s=GRACE_S, sla_s=SLA_S)
    n = 0
    with open(path, "rb") as fh:
        for batch in iter_batches(fh):
            if n + len(batch) > limit:
                batch = batch[: limit - n]
            a.feed(batch)
            n += len(batch)
            if n >= limit:
                break
    findings = a.finish(a.watermark + int(3600e9))
    return {"records": n, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "findings": len(findings), "peak_open": a.peak_open}


def run_baseline(path: str, limit: int) -> dict[str, float]:
    gc.disable()
    t0, c0 = time.perf_counter(), time.process_time()
    events: dict[str, dict[str, object]] = {}
    n = 0
    with open(path, "rb") as fh:
        for batch in iter_batches(fh):
            for raw in batch:
                r = json.loads(raw)
                e = events.setdefault(r["event_id"], {"stages": set(), "handled": {}, "pub": None})
                stages = e["stages"]
                assert isinstance(stages, set)
                stages.add(r["stage"])
                if r["stage"] == "published":
                    e["pub"] = r["time_ns"]
                elif r["stage"] == "handled":
                    handled = e["handled"]
                    assert isinstance(handled, dict)
                    handled.setdefault(r["consumer_group"], []).append(r)
                n += 1
                if n >= limit:
                    break
            if n >= limit:
                break
    groups = {g for e in events.values() for g in e["handled"]}  # type: ignore[attr-defined]
    findings = 0
    for e in events.values():
        if "acked" in e["stages"]:  # type: ignore[operator]
            findings += sum(1 for g in groups if g not in e["handled"])  # type: ignore[operator,misc]  # naive: no topic->group map
        elif "send_failed" in e["stages"]:  # type: ignore[operator]
            findings += 1
    return {"records": n, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "findings": findings, "peak_open": len(events)}


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss it is not inherited across fork+exec from a big parent."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(kind: str, path: str, limit: int) -> None:
    result = (run_ours if kind == "ours" else run_baseline)(path, limit)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure(kind: str, path: str, limit: int, tree: str | None = None) -> dict[str, float]:
    script = os.path.join(tree, "benchmarks", "auditor.py") if tree else __file__  # that tree's code, its own script
    result: dict[str, float] = run_child(script, "--child", kind, path, str(limit))
    result["rate"] = result["records"] / result["cpu_seconds"]  # per CPU second: one core, whatever else runs
    result["wall_rate"] = result["records"] / result["seconds"]
    return result


def compare(tree: str, path: str, records: int, rounds: int) -> int:
    """Before (``tree``) and after (this checkout), alternating, best round of each."""
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(rounds):
        runs["before"].append(measure("ours", path, records, tree))
        runs["after"].append(measure("ours", path, records))
    best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items()}
    print(f"input: {records:,} records; before = {tree}, after = {ROOT}; best of {rounds} alternating rounds")
    for name, r in best.items():
        rates = ", ".join(f"{x['rate']:,.0f}" for x in runs[name])
        print(f"  {name:<6} {r['rate']:>10,.0f} records/s CPU  {r['cpu_seconds']:5.2f} s  peak RSS {r['peak_rss_mb']:6.1f} MB  "
              f"findings {r['findings']:,.0f}   (rounds: {rates})")
    ratios = sorted(a["rate"] / b["rate"] for a, b in zip(runs["after"], runs["before"]))
    print(f"after/before: {best['after']['rate'] / best['before']['rate']:.3f}x records/s (best rounds); "
          f"median of the {rounds} paired rounds {ratios[len(ratios) // 2]:.3f}x (range {ratios[0]:.3f}-{ratios[-1]:.3f})")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--out", default="/tmp/co-audit-bench")
    p.add_argument("--before", metavar="TREE", help="another checkout whose auditor to compare with ours")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds with --before (best of each)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    lines_path, json_path = prepare(args.out, args.records)
    if args.before:
        return compare(args.before, lines_path, args.records, args.rounds)
    size_ours, size_json = os.path.getsize(lines_path), os.path.getsize(json_path)
    print(f"input: {args.records:,} records; encoding {size_ours / args.records:.0f} B/record (lines) "
          f"vs {size_json / args.records:.0f} B/record (JSON lines)")
    ours = measure("ours", lines_path, args.records)
    base = measure("baseline", json_path, args.records)
    for name, r in (("ours (lines + streaming auditor)", ours), ("baseline (JSON per line + dict per event)", base)):
        print(f"{name:<44} {r['rate']:>10,.0f} records/s CPU ({r['wall_rate']:>9,.0f} wall)  {r['cpu_seconds']:5.2f} s  peak RSS {r['peak_rss_mb']:6.1f} MB  "
              f"open events {r['peak_open']:>8,.0f}  findings {r['findings']:,.0f}")
    print(f"speed-up: {ours['rate'] / base['rate']:.1f}x   target >= 500,000 records/s: {'met' if ours['rate'] >= 5e5 else 'NOT met'}")
    print("flatness (ours, growing history):")
    for r in [measure("ours", lines_path, args.records // frac) for frac in (4, 2)] + [ours]:
        print(f"  {r['records']:>10,.0f} records  peak RSS {r['peak_rss_mb']:6.1f} MB  open events {r['peak_open']:>8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
