"""The streaming auditor: reconciles producers against each consumer group by event id.

Why streaming: a deploy gate reads days of audit history, but an event can only go
wrong within its grace period (it is handled by then, or it is lost). So state is
kept per *open* event only; once the watermark (the newest record time seen, i.e.
stream time) passes an event's deadline (first seen + grace) it is resolved into
findings and evicted. Memory follows the grace window, not the history. One
exception, bounded the same way: a redelivery (a consumer that died before its
commit is replaced only after its group's session timeout) can come after the
event was resolved, so a handled event's state is kept ``redelivery_s`` longer.

Why raw lines: the hot loop splits each line only up to the fields it needs and
keeps the bytes; everything else (type, order id, trace id) is decoded only for
the few events that become findings.

Late evidence is honoured: findings stay provisional until :meth:`finish`, so a
handling that arrives after its event was resolved as LOST turns the finding into
LATE (or nothing), and an ack after UNDELIVERED reopens the event. Identical
records (an at-least-once sink or a spool replay repeats some) count once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from commerce_observe.monitor.audit.findings import Finding, Kind, from_line, handling_of, producer_ids
from commerce_observe.monitor.audit.sequence import SeqTrack

# event state: a list indexed by position, [0 producer line | None, 1 flags, 2 {group: handled line | [lines]},
# 3 {group: [failed lines]} | None, 4 producer time, 5 destination, 6 sequence and 7 source a producer record of it
# gave the sequence tracker (b"": none)].
# Giving a tracker a number it already has is a no-op (the number is pending, or behind the expected one and in no
# gap), so the second producer record of an event (publish and ack carry the same number) skips the tracker.
# _REPEAT: some group holds a list of handlings; _LATE: a LATE finding of it waits for its producer line
_PUB, _ACK, _SENDFAIL, _NEEDS_LATE, _REPEAT, _LATE = 1, 2, 4, 8, 16, 32
_PRODUCER_FLAGS = {b"P": _PUB, b"A": _ACK, b"F": _SENDFAIL}
_COMPACT_AT = 1 << 14  # resolved deadline-queue entries kept before the queue is compacted

#: per destination: (latest of its groups' earliest publications, groups learned there,
#: candidate (group, expected-since) pairs, candidate groups)
DestInfo = tuple[int, frozenset[bytes], tuple[tuple[bytes, int], ...], frozenset[bytes]]


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

    Hot path (``benchmarks/auditor.py``): :meth:`feed` is one loop over the batch
    with no per-record calls but one ``SeqTrack.add`` per event - one ``split``
    unpacked into the fields every stage needs, ``int`` only for times and sequence
    numbers, one dict look-up by the raw event id, branches per stage letter. The
    deadline queue is two parallel lists cut with one ``bisect``. Resolving an event
    is inlined and takes set-level fast paths for the common case (every expected
    group handled it once, nothing new to learn about who reads the destination).
    """

    def __init__(self, *, grace_s: float = 30.0, sla_s: float = 5.0, groups: Mapping[str, Iterable[str]] | None = None,
                 redelivery_s: float | None = None) -> None:
        self.grace_ns = int(grace_s * 1e9)
        self.sla_ns = int(sla_s * 1e9)
        # how long a resolved event's handlings are kept to recognise a redelivery (default: one more grace period)
        self.redelivery_ns = self.grace_ns if redelivery_s is None else int(redelivery_s * 1e9)
        self._selected: dict[bytes, frozenset[bytes]] | None = None
        if groups is not None:
            self._selected = {g.encode(): frozenset(d.encode() for d in dests) for g, dests in groups.items()}
        self._events: dict[bytes, list[Any]] = {}
        self._names: dict[bytes, bytes] = {}  # group and destination names, one object each
        # deadline queue: the watermark when each event was opened (non-decreasing, as the watermark only grows)
        # and its id, as parallel lists; entries before _head are resolved
        self._opened: list[int] = []
        self._opened_ids: list[bytes] = []
        self._head = 0
        self._since: dict[bytes, dict[bytes, int]] = {}  # destination -> group -> earliest publication handled
        self._dest: dict[bytes, DestInfo] = {}  # derived from _since and the selection, rebuilt when they change
        self._seqs: dict[bytes, SeqTrack] = {}  # b"source\tdestination" -> tracker
        # resolved events that were handled (id -> state), kept for redelivery_ns: a group handling one again then
        # (a consumer that died before its commit is replaced only after the group's session timeout) is a DUPLICATE
        self._done: dict[bytes, list[Any]] = {}
        self._done_batches: deque[tuple[int, list[bytes]]] = deque()  # (horizon when resolved, ids)
        self.watermark = 0
        # provisional findings, as raw lines, built into Finding objects by finish()
        self._lost: dict[tuple[bytes, bytes], tuple[bytes, list[bytes]]] = {}
        self._undelivered: dict[bytes, bytes] = {}
        # LATE: (handling line, publication time, producer line or None); DUPLICATE: (handling lines, producer line)
        self._late: dict[tuple[bytes, bytes], tuple[bytes, int, bytes | None]] = {}
        self._dups: dict[tuple[bytes, bytes], tuple[list[bytes], bytes | None]] = {}
        self.records = 0
        self.invalid = 0
        self.unidentified = 0
        self.orphans = 0  # handled with no producer record at all (producer not audited?)
        self.foreign = 0  # messages handled without an event id, audited by topic, partition and offset
        self.peak_open = 0
        self.pending_at_finish = 0
        #: windows a process could not record (its spool was full): (first ns, last ns, source, count)
        self._trail_gaps: list[tuple[int, int, bytes, int]] = []
        self._gaps_to_report: list[tuple[int, int, bytes, int]] = []
        self.unjudged = 0  # events not called LOST/UNDELIVERED because their evidence may be in a trail gap

    def feed(self, lines: Iterable[bytes]) -> None:
        """Ingest one batch of lines (any order across events), then resolve what is due."""
        if lines.__class__ is not list:
            lines = list(lines)
        events = self._events
        get = events.get
        op_append, id_append = self._opened.append, self._opened_ids.append
        sla, wm = self.sla_ns, self.watermark
        seqs, lost, late, since, undelivered = self._seqs, self._lost, self._late, self._since, self._undelivered
        done = self._done
        _int, intern = int, self._names.setdefault
        bad = anon = 0
        for line in lines:
            # the fields the stages need, unpacked at once; fewer than 9 fields: not a record
            try:
                code, ts, eid, grp, pb, src, dest, sq, _ = line.split(b"\t", 8)
            except ValueError:
                bad += 1
                continue
            if code == b"D":  # a process dropped records here: a gap in the trail, not a loss
                self._trail_gap(line)
                continue
            if not eid:
                # a handling of another producer's message (no usable ce_id): keyed by where it sits,
                # b"\t" + topic, partition and offset (a raw tab never starts a real, escaped, event id)
                if code != b"H" and code != b"X":
                    anon += 1
                    continue
                where = _.split(b"\t", 2)
                if len(where) < 3 or not where[1]:
                    anon += 1
                    continue
                eid = b"\t" + dest + b"\t" + where[0] + b"\t" + where[1]
            t = _int(ts)
            if t > wm:
                wm = t
            if code == b"H":
                grp = intern(grp, grp)  # shared group and destination objects: compact state, warm keys
                s = get(eid)
                if s is None:
                    if (eid, grp) in lost or eid in undelivered:
                        self._late_evidence(eid, grp, line, pb, t)
                        continue
                    r = done.get(eid) if done else None
                    if r is not None and grp in r[2]:
                        self._redelivered(r, eid, grp, line)
                        continue
                    s = events[eid] = [None, 0, {grp: line}, None, 0, intern(dest, dest), b"", b""]
                    op_append(wm)
                    id_append(eid)
                else:
                    handled = s[2]
                    g = handled.setdefault(grp, line)  # one handling: the line itself, a list only for repeats
                    if g is not line:
                        if g.__class__ is bytes:
                            if g != line:
                                handled[grp] = [g, line]
                                s[1] |= _REPEAT
                        elif line not in g:
                            g.append(line)
                        continue
                if pb:
                    pub = _int(pb)
                    if t - pub > sla:
                        late[(eid, grp)] = (line, pub, None)
                        s[1] |= _LATE
                    d = since.get(dest)  # learn who reads where as soon as it shows (the check spares the call)
                    if d is None or d.get(grp, pub + 1) > pub:
                        self._learn_since(dest, grp, pub)
                else:
                    s[1] |= _NEEDS_LATE
                continue
            # producer stages: the line kept is the ack, else the first; the time is the publication's
            flag = _PRODUCER_FLAGS.get(code)
            if flag is not None:
                s = get(eid)
                if s is None:
                    if eid in undelivered:
                        del undelivered[eid]  # reopen: a later ack or retry may deliver it
                    s = events[eid] = [line, flag, {}, None, t, intern(dest, dest), sq, src]
                    op_append(wm)
                    id_append(eid)
                else:
                    if flag == _PUB:
                        if s[0] is None:
                            s[0] = line
                        s[4] = t
                    else:  # an ack always replaces the line kept; a send failure only a non-ack
                        if flag == _ACK or s[0] is None or not s[1] & _ACK:
                            s[0] = line
                        if not s[4]:
                            s[4] = t
                    s[1] |= flag
                    if sq == s[6] and src == s[7] and dest == s[5]:
                        continue  # the sequence number this event's first producer record gave
                    if not s[6] and dest == s[5]:
                        s[6], s[7] = sq, src
            elif code == b"X":
                s = get(eid)
                if s is None:
                    s = events[eid] = [None, 0, {}, None, 0, intern(dest, dest), b"", b""]
                    op_append(wm)
                    id_append(eid)
                if s[3] is None:
                    s[3] = {}
                failed = s[3].setdefault(grp, [])
                if line not in failed:  # a record both in the sink and still in a spool counts once
                    failed.append(line)
                continue
            else:
                bad += 1
                continue
            # sequence numbers per (source, destination)
            if sq:
                key = src + b"\t" + dest
                tr = seqs.get(key)
                if tr is None:
                    tr = seqs[key] = SeqTrack()
                tr.add(_int(sq), t)
        self.records += len(lines)
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
        horizon = watermark_ns - self.grace_ns  # due: opened at or before it (deadline = opened + grace)
        opened, head = self._opened, self._head
        end = bisect_right(opened, horizon, head)
        if end > head:
            due = self._opened_ids[head:end]
            if end >= _COMPACT_AT and 2 * end >= len(opened):
                del opened[:end]
                del self._opened_ids[:end]
                end = 0
            self._head = end
            self._resolve(due, horizon)
        batches = self._done_batches
        if batches and batches[0][0] <= horizon - self.redelivery_ns:
            forget, cut = self._done.pop, horizon - self.redelivery_ns
            while batches and batches[0][0] <= cut:
                for eid in batches.popleft()[1]:
                    forget(eid, None)
        for tr in self._seqs.values():
            tr.resolve(horizon)

    @property
    def open_events(self) -> int:
        """Events read and not judged yet."""
        return len(self._events)

    def _dest_info(self, dest: bytes) -> DestInfo:
        """What resolution needs about ``dest``: learned groups, then explicit ones, as candidates."""
        sel = self._selected
        known = self._since.get(dest, {})
        learned = [(g, t) for g, t in known.items() if sel is None or g in sel]
        explicit = [(g, -1) for g, dests in (sel or {}).items() if dest in dests]
        merged = dict(learned)
        merged.update(explicit)
        info = self._dest[dest] = (max(known.values(), default=0), frozenset(known), tuple(merged.items()), frozenset(merged))
        return info

    def _learn_since(self, dest: bytes, grp: bytes, pub: int) -> None:
        known = self._since.setdefault(dest, {})
        if known.get(grp, pub + 1) > pub:
            known[grp] = pub
            self._dest.pop(dest, None)

    def _resolve(self, due: list[bytes], horizon: int) -> None:
        """Resolve the events ``due`` (in deadline order) into provisional findings and evict them."""
        pop, sel, grace, sla = self._events.pop, self._selected, self.grace_ns, self.sla_ns
        info_of, learn = self._dest.get, self._learn_since
        dups, lost, undelivered, late = self._dups, self._lost, self._undelivered, self._late
        orphans = foreign = 0
        remember = self.redelivery_ns > 0
        done = self._done if remember else {}  # every resolved event (a redelivery needs a group in its handlings)
        for eid in due:
            s = pop(eid, None)
            if s is None:
                continue
            done[eid] = s
            pline, flags, handled, failed, ptime, dest, _, _ = s
            if flags & _REPEAT:
                for grp, lines in handled.items():
                    if lines.__class__ is list and (sel is None or grp in sel):
                        dups[(eid, grp)] = (lines, pline)
            if pline is None:
                if eid[:1] == b"\t":
                    foreign += 1  # another producer's message: it never has a producer record
                else:
                    orphans += 1
                continue
            if flags & _LATE:  # give the LATE findings the producer's line (order and payment ids)
                for grp in handled:
                    entry = late.get((eid, grp))
                    if entry is not None:
                        late[(eid, grp)] = (entry[0], entry[1], pline)
            if flags & _ACK or ((flags & _PUB) and (handled or failed)):
                info = info_of(dest) or self._dest_info(dest)
                hk = handled.keys()
                # learn from the handlings with the producer's time standing in for the publication time:
                # nothing to learn when every group is known here no later than that
                if handled and (ptime < info[0] or not hk <= info[1]):
                    for grp in handled:
                        learn(dest, grp, ptime)
                    info = info_of(dest) or self._dest_info(dest)
                if not hk >= info[3]:  # some candidate group did not handle it
                    for grp, gsince in info[2]:
                        if gsince - grace <= ptime and grp not in handled:
                            if self._trail_gaps and self._in_trail_gap(ptime):
                                self.unjudged += 1
                                continue
                            lost[(eid, grp)] = (pline, (failed or {}).get(grp, []))
            elif not handled:
                if self._trail_gaps and self._in_trail_gap(ptime):
                    self.unjudged += 1
                else:
                    undelivered[eid] = pline
            if flags & _NEEDS_LATE:
                for grp, lines in handled.items():
                    first = lines if lines.__class__ is bytes else lines[0]
                    f = first.split(b"\t", 5)
                    if not f[4] and int(f[1]) - ptime > sla:
                        late[(eid, grp)] = (first, ptime, pline)
        self.orphans += orphans
        self.foreign += foreign
        if remember:
            self._done_batches.append((horizon, due))

    def _redelivered(self, s: list[Any], eid: bytes, grp: bytes, line: bytes) -> None:
        """Another handling, by a group that had handled it, of an event already resolved: a DUPLICATE
        (with every handling so far), unless it is a replay of a record already counted."""
        handled = s[2]
        g = handled[grp]
        if g.__class__ is bytes:
            if g == line:
                return
            lines = handled[grp] = [g, line]
        elif line in g:
            return
        else:
            g.append(line)
            lines = g
        if self._selected is None or grp in self._selected:
            self._dups[(eid, grp)] = (lines, s[0])

    def _in_trail_gap(self, ptime: int) -> bool:
        """Whether an event published at ``ptime`` may have its handling (or its ack) among
        records a process dropped: the gap's window, widened by one grace period before."""
        grace = self.grace_ns
        return any(t0 - grace <= ptime <= t1 for t0, t1, _, _ in self._trail_gaps)

    def _trail_gap(self, line: bytes) -> None:
        """A trail-gap marker: remember its window and withdraw the provisional LOST and
        UNDELIVERED verdicts it makes unprovable."""
        f = line.split(b"\t")
        try:
            t0 = int(f[1])
            t1, count = int(f[4] or f[1]), int(f[7] or 0)
        except (ValueError, IndexError):
            self.invalid += 1
            return
        self._trail_gaps.append((t0, t1, f[5], count))
        self._gaps_to_report.append((t0, t1, f[5], count))
        for key, (pline, _) in list(self._lost.items()):
            if self._in_trail_gap(int(pline.split(b"\t", 2)[1])):
                del self._lost[key]
                self.unjudged += 1
        for eid, pline in list(self._undelivered.items()):
            if self._in_trail_gap(int(pline.split(b"\t", 2)[1])):
                del self._undelivered[eid]
                self.unjudged += 1

    def _late_evidence(self, eid: bytes, grp: bytes, line: bytes, pb: bytes, t: int) -> None:
        """A handling of an already-resolved event: retract LOST/UNDELIVERED, judge lateness."""
        entry = self._lost.pop((eid, grp), None)
        pline = self._undelivered.pop(eid, None)
        if entry is not None:
            pline = entry[0]
        pub = int(pb) if pb else (int(pline.split(b"\t", 2)[1]) if pline is not None else t)
        if t - pub > self.sla_ns and (eid, grp) not in self._late:
            self._late[(eid, grp)] = (line, pub, pline)

    def finish(self, now_ns: int | None = None) -> list[Finding]:
        """Resolve what is due by ``now_ns`` (default: the watermark) and return all findings.

        Events still inside their grace period are not judged (counted in
        ``pending_at_finish``): it is too early to call them lost.
        """
        self.advance(max(now_ns or 0, self.watermark))
        self.pending_at_finish = len(self._events)
        return self._findings()

    def take(self) -> list[Finding]:
        """The findings resolved so far, each handed out once and then forgotten.

        For a service that runs for months (``commerce-observe watch``): what
        :meth:`finish` would report grows without end, and a finding must be
        emitted once, when its event's grace window has closed. The price of
        forgetting: evidence that arrives after a finding was taken no longer
        retracts it (a handling of a taken LOST event is then an orphan).
        """
        # a LATE handling of an event still open waits for it: its resolution adds the producer's ids
        events = self._events
        waiting = {key: entry for key, entry in self._late.items() if key[0] in events}
        for key in waiting:
            del self._late[key]
        out = self._findings()
        self._lost, self._undelivered, self._late, self._dups = {}, {}, waiting, {}
        self._gaps_to_report = []  # reported once; the windows stay while they can still cover an event
        self._trail_gaps = [g for g in self._trail_gaps if g[1] + self.grace_ns > self.watermark]
        for tr in self._seqs.values():
            tr.gaps = []
        return out

    def _findings(self) -> list[Finding]:
        out: list[Finding] = []
        for (eid, grp), (pline, xlines) in self._lost.items():
            out.append(from_line(Kind.LOST, pline, consumer_group=grp.decode(), handlings=tuple(map(handling_of, xlines))))
        for eid, pline in self._undelivered.items():
            out.append(from_line(Kind.UNDELIVERED, pline))
        for (eid, grp), (lines, producer) in self._dups.items():
            hs = tuple(map(handling_of, lines))
            out.append(from_line(Kind.DUPLICATE, lines[0], consumer_group=grp.decode(), handlings=hs,
                                 **producer_ids(producer)))
        sel = self._selected
        for (eid, grp), (hline, pub, producer) in self._late.items():
            if sel is not None and grp not in sel:
                continue
            h = handling_of(hline)
            out.append(from_line(Kind.LATE, hline, consumer_group=grp.decode(), published_ns=pub,
                                 latency_ms=(h.time_ns - pub) / 1e6, handlings=(h,), **producer_ids(producer)))
        for t0, t1, src_raw, count in self._gaps_to_report:
            out.append(Finding(Kind.GAP, None, source=src_raw.decode(errors="replace") or None, published_ns=t0,
                               error=f"audit trail gap: {count} records dropped by this source between "
                                     f"{t0} and {t1} ns (its local spool was full); events of that window "
                                     "are not judged LOST"))
        for key, tr in self._seqs.items():
            src, _, dest = key.partition(b"\t")
            for lo, hi in tr.gaps:
                out.append(Finding(Kind.GAP, None, source=src.decode(), destination=dest.decode(), sequence=lo, sequence_end=hi))
        out.sort(key=Finding.sort_key)
        return out
