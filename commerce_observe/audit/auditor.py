"""The streaming auditor: reconciles producers against each consumer group by event id.

Why streaming: a deploy gate reads days of audit history, but an event can only go
wrong within its grace period (it is handled by then, or it is lost). So state is
kept per *open* event only; once the watermark (the newest record time seen, i.e.
stream time) passes an event's deadline (first seen + grace) it is resolved into
findings and evicted. Memory follows the grace window, not the history.

Why raw lines: the hot loop splits each line only up to the fields it needs and
keeps the bytes; everything else (type, order id, trace id) is decoded only for
the few events that become findings.

Late evidence is honoured: findings stay provisional until :meth:`finish`, so a
handling that arrives after its event was resolved as LOST turns the finding into
LATE (or nothing), and an ack after UNDELIVERED reopens the event. Identical
records (an at-least-once sink or a spool replay repeats some) count once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from commerce_observe.audit.findings import Finding, Kind, from_line, handling_of
from commerce_observe.audit.sequence import SeqTrack

# event state slots: producer line, flags, {group: handled line | [lines]}, {group: [failed lines]} | None,
# producer time, destination
_PLINE, _FLAGS, _GROUPS, _FAILED, _PTIME, _DEST = range(6)
_PUB, _ACK, _SENDFAIL, _NEEDS_LATE = 1, 2, 4, 8
_PRODUCER_FLAG = {b"P": _PUB, b"A": _ACK, b"F": _SENDFAIL}


class Auditor:
    """Feed batches of audit lines with :meth:`feed`; :meth:`finish` returns the findings.

    ``groups`` selects the consumer groups to check: None checks every group seen;
    otherwise a mapping group -> destinations. A group is expected on a destination
    it is explicitly mapped to, or, with an empty mapping, on every destination it
    has been seen handling - for events published no more than one grace period
    before the earliest publication it handled there. So a group that started
    later is not blamed for older history, while a burst published just before
    the group's first poll (partitions interleave it) is still checked in full.
    The price: a group that joins live traffic at the latest offset may be blamed
    for up to one grace period of events published just before it joined.
    """

    def __init__(self, *, grace_s: float = 30.0, sla_s: float = 5.0, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.grace_ns = int(grace_s * 1e9)
        self.sla_ns = int(sla_s * 1e9)
        self._selected: dict[bytes, frozenset[bytes]] | None = None
        if groups is not None:
            self._selected = {g.encode(): frozenset(d.encode() for d in dests) for g, dests in groups.items()}
        self._events: dict[bytes, list[Any]] = {}
        self._fifo: deque[tuple[int, bytes]] = deque()
        self._since: dict[bytes, dict[bytes, int]] = {}  # destination -> group -> earliest publication handled
        self._cands: dict[bytes, tuple[tuple[bytes, int], ...]] = {}
        self._seqs: dict[bytes, SeqTrack] = {}  # b"source\tdestination" -> tracker
        self.watermark = 0
        # provisional findings, as raw lines, built into Finding objects by finish()
        self._lost: dict[tuple[bytes, bytes], tuple[bytes, list[bytes]]] = {}
        self._undelivered: dict[bytes, bytes] = {}
        self._late: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
        self._dups: dict[tuple[bytes, bytes], list[bytes]] = {}
        self.records = 0
        self.invalid = 0
        self.unidentified = 0
        self.orphans = 0  # handled with no producer record at all (producer not audited?)
        self.peak_open = 0
        self.pending_at_finish = 0

    def feed(self, lines: Iterable[bytes]) -> None:
        """Ingest one batch of lines (any order across events), then resolve what is due."""
        events = self._events
        fifo_append = self._fifo.append
        grace, sla, wm = self.grace_ns, self.sla_ns, self.watermark
        seqs, lost, late, pflags, since = self._seqs, self._lost, self._late, _PRODUCER_FLAG, self._since
        n = bad = anon = 0
        for line in lines:
            n += 1
            f = line.split(b"\t", 8)
            if len(f) < 9:
                bad += 1
                continue
            code = f[0]
            eid = f[2]
            if not eid:
                anon += 1
                continue
            t = int(f[1])
            if t > wm:
                wm = t
            s = events.get(eid)
            if code == b"H":
                grp = f[3]
                if s is None:
                    if (eid, grp) in lost or eid in self._undelivered:
                        self._late_evidence(eid, grp, line, f, t)
                        continue
                    s = events[eid] = [None, 0, {}, None, 0, f[6]]
                    fifo_append((wm + grace, eid))
                handled = s[2]
                g = handled.get(grp)
                if g is None:
                    handled[grp] = line  # one handling: the line itself, a list only for repeats
                    if f[4]:
                        pub = int(f[4])
                        if t - pub > sla:
                            late[(eid, grp)] = (line, pub)
                        d = since.get(f[6])  # learn who reads where as soon as it shows
                        if d is None or d.get(grp, pub + 1) > pub:
                            self._learn_since(f[6], grp, pub)
                    else:
                        s[1] |= _NEEDS_LATE
                elif g.__class__ is bytes:
                    if g != line:
                        handled[grp] = [g, line]
                elif line not in g:
                    g.append(line)
            elif code in pflags:
                if s is None:
                    if eid in self._undelivered:
                        del self._undelivered[eid]  # reopen: a later ack or retry may deliver it
                    s = events[eid] = [None, 0, {}, None, 0, f[6]]
                    fifo_append((wm + grace, eid))
                flag = pflags[code]
                if s[0] is None or flag == _ACK or (flag == _SENDFAIL and not s[1] & _ACK):
                    s[0] = line
                if flag == _PUB or not s[4]:
                    s[4] = t
                s[1] |= flag
                if f[7]:
                    key = f[5] + b"\t" + f[6]
                    tr = seqs.get(key)
                    if tr is None:
                        tr = seqs[key] = SeqTrack()
                    tr.add(int(f[7]), t)
            elif code == b"X":
                if s is None:
                    s = events[eid] = [None, 0, {}, None, 0, f[6]]
                    fifo_append((wm + grace, eid))
                if s[3] is None:
                    s[3] = {}
                s[3].setdefault(f[3], []).append(line)
            else:
                bad += 1
        self.records += n
        self.invalid += bad
        self.unidentified += anon
        self.watermark = wm
        if len(events) > self.peak_open:
            self.peak_open = len(events)
        self.advance(wm)

    def advance(self, watermark_ns: int) -> None:
        """Resolve every event and sequence whose deadline is at or before ``watermark_ns``."""
        if watermark_ns > self.watermark:
            self.watermark = watermark_ns
        fifo, events, resolve = self._fifo, self._events, self._resolve
        while fifo and fifo[0][0] <= watermark_ns:
            _, eid = fifo.popleft()
            s = events.pop(eid, None)
            if s is not None:
                resolve(eid, s)
        horizon = watermark_ns - self.grace_ns
        for tr in self._seqs.values():
            if tr.pending:
                tr.resolve(horizon)

    def _candidates(self, dest: bytes) -> tuple[tuple[bytes, int], ...]:
        """(group, expected-since) pairs for ``dest``: learned groups, then explicit ones."""
        cands = self._cands.get(dest)
        if cands is None:
            sel = self._selected
            learned = [(g, t) for g, t in self._since.get(dest, {}).items() if sel is None or g in sel]
            explicit = [(g, -1) for g, dests in (sel or {}).items() if dest in dests]
            merged = dict(learned)
            merged.update(explicit)
            cands = self._cands[dest] = tuple(merged.items())
        return cands

    def _learn_since(self, dest: bytes, grp: bytes, pub: int) -> None:
        known = self._since.setdefault(dest, {})
        if known.get(grp, pub + 1) > pub:
            known[grp] = pub
            self._cands.pop(dest, None)

    def _learn(self, dest: bytes, handled: dict[bytes, Any], ptime: int) -> None:
        """Learn from handlings whose record had no publication time (the producer's time stands in)."""
        for grp in handled:
            self._learn_since(dest, grp, ptime)

    def _resolve(self, eid: bytes, s: list[Any]) -> None:
        pline, flags, handled, failed, ptime, dest = s
        sel, grace = self._selected, self.grace_ns
        for grp, lines in handled.items():
            if lines.__class__ is list and (sel is None or grp in sel):
                self._dups[(eid, grp)] = lines
        if pline is None:
            self.orphans += 1
            return
        if flags & _ACK or ((flags & _PUB) and (handled or failed)):
            if handled:
                self._learn(dest, handled, ptime)
            for grp, since in self._candidates(dest):
                if since - grace <= ptime and grp not in handled:
                    self._lost[(eid, grp)] = (pline, (failed or {}).get(grp, []))
        elif not handled:
            self._undelivered[eid] = pline
        if flags & _NEEDS_LATE:
            for grp, lines in handled.items():
                first = lines if lines.__class__ is bytes else lines[0]
                f = first.split(b"\t", 5)
                if not f[4] and int(f[1]) - ptime > self.sla_ns:
                    self._late[(eid, grp)] = (first, ptime)

    def _late_evidence(self, eid: bytes, grp: bytes, line: bytes, f: list[bytes], t: int) -> None:
        """A handling of an already-resolved event: retract LOST/UNDELIVERED, judge lateness."""
        entry = self._lost.pop((eid, grp), None)
        self._undelivered.pop(eid, None)
        pub = int(f[4]) if f[4] else (int(entry[0].split(b"\t", 2)[1]) if entry else t)
        if t - pub > self.sla_ns and (eid, grp) not in self._late:
            self._late[(eid, grp)] = (line, pub)

    def finish(self, now_ns: int | None = None) -> list[Finding]:
        """Resolve what is due by ``now_ns`` (default: the watermark) and return all findings.

        Events still inside their grace period are not judged (counted in
        ``pending_at_finish``): it is too early to call them lost.
        """
        self.advance(max(now_ns or 0, self.watermark))
        self.pending_at_finish = len(self._events)
        out: list[Finding] = []
        for (eid, grp), (pline, xlines) in self._lost.items():
            out.append(from_line(Kind.LOST, pline, consumer_group=grp.decode(), handlings=tuple(map(handling_of, xlines))))
        for eid, pline in self._undelivered.items():
            out.append(from_line(Kind.UNDELIVERED, pline))
        for (eid, grp), lines in self._dups.items():
            hs = tuple(map(handling_of, lines))
            out.append(from_line(Kind.DUPLICATE, lines[0], consumer_group=grp.decode(), handlings=hs))
        sel = self._selected
        for (eid, grp), (hline, pub) in self._late.items():
            if sel is not None and grp not in sel:
                continue
            h = handling_of(hline)
            out.append(from_line(Kind.LATE, hline, consumer_group=grp.decode(), published_ns=pub,
                                 latency_ms=(h.time_ns - pub) / 1e6, handlings=(h,)))
        for key, tr in self._seqs.items():
            src, _, dest = key.partition(b"\t")
            for lo, hi in tr.gaps:
                out.append(Finding(Kind.GAP, None, source=src.decode(), destination=dest.decode(), sequence=lo, sequence_end=hi))
        out.sort(key=Finding.sort_key)
        return out
