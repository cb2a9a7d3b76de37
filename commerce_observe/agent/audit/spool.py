"""Local disk spool: the journal of consumer records, and audit lines waiting for the sink.

Append-only segment files (``seg-000000000001-<random>.log``: in order, and never
a name used before). Two kinds of writes land
there, in the same segments:

* the **journal**: each HANDLED / HANDLE_FAILED line is appended by the thread that
  reported it, as it happens (:meth:`append_line`): copied into the open segment's
  shared mapping (reserved on disk first), no system call. A line copied is in the
  kernel's page cache, so it survives the process being killed
  (``kill -9``); it survives an OS crash once fsynced. The fsync is grouped:
  :meth:`sync` runs once per commit or ack (the writer's barrier) and covers the open
  segment and every closed one not fsynced yet; :meth:`rotate` fsyncs the segment it
  closes; :meth:`replay` to a sink that outlives the host ships without one (and
  fsyncs what it could not ship); never once per line;
* batches the writer could not deliver while the sink is down (:meth:`append`).

The writer ships closed segments to the sink (:meth:`rotate` then :meth:`replay`),
oldest first, recording progress in a ``cursor`` file replaced atomically after
each batch; a crash during replay therefore re-sends at most one batch, and the
auditor counts byte-identical records once.

Bounded (``max_bytes``, ``COMMERCE_OBSERVE_SPOOL_MAX_BYTES``, default 256 MiB): a
batch (or journal line) that does not fit is dropped and counted
(``audit.spool_dropped``), and the window it covered is written to the small ``gap``
file as a trail-gap marker line (``record.trail_gap_line``: first and last dropped
time, how many). Replay sends that line after the segments, so ``commerce-observe
audit`` reports an explicit GAP in the trail for that window instead of calling its
events LOST.

A torn final line (no newline) is ignored on replay; a structurally invalid line
is skipped and counted. An exclusive ``flock`` on ``.lock`` keeps two live
processes from sharing one spool directory; a directory whose lock can be taken
belongs to no live process and its segments can be adopted (:meth:`adopt`). A
per-process folder is made and locked under a hidden name and renamed into place
(:meth:`claim`), so no other process sees it unlocked while its owner lives.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from commerce_observe._internal.forks import after_fork_in_child
from commerce_observe._internal.selfstats import stats
from commerce_observe.agent.audit.record import TIME, is_valid, trail_gap_line, valid_lines
from commerce_observe.agent.audit.sinks import Sink


#: Default bound of a spool (COMMERCE_OBSERVE_SPOOL_MAX_BYTES): about a million records.
DEFAULT_MAX_BYTES = 256 << 20

#: Room reserved (``posix_fallocate``) and mapped per open segment: a write that does
#: not fit closes the segment and opens the next one.
MAP_BYTES = 1 << 20


class SpoolBusy(Exception):
    """Another live process holds this spool directory."""


class Spool:
    def __init__(self, directory: str, *, segment_bytes: int = 16 << 20, fsync: bool = True,
                 max_bytes: int = DEFAULT_MAX_BYTES, source: str | None = None) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.source = source
        #: records dropped because the spool was full (this process)
        self.dropped = 0
        os.makedirs(directory, exist_ok=True)
        self._lock_fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolBusy(directory) from None
        #: Serialises appends (from any thread), rotation and fsync of the open segment.
        self._lock = threading.Lock()
        self._fd: int | None = None
        #: The open segment's mapping (MAP_SHARED: what is copied into it is the file's
        #: page cache at once), ``_cap`` bytes long, ``_size`` of them written.
        self._map: mmap.mmap | None = None
        self._cap = 0
        self._size = 0
        self._dirty = False  # the open segment holds lines not yet fsynced
        self._path = ""  # the open segment's
        #: Closed segments holding lines not fsynced yet: closed to be shipped to a sink
        #: that outlives this machine (fsynced only if the shipping fails), or closed
        #: full by a write. Every :meth:`sync` fsyncs those still here.
        self._unsynced: set[str] = set()
        self._bytes = sum(os.path.getsize(os.path.join(directory, n)) for n in self.segments())
        #: Lines appended so far, and how many of the first ones are durable (fsynced,
        #: or closed into a segment that was fsynced): the writer's durability marks.
        self.appended = 0
        self.durable = 0
        if hasattr(os, "register_at_fork"):
            after_fork_in_child(self._after_fork)

    @classmethod
    def claim(cls, root: str, name: str, **options: Any) -> Spool:
        """A new folder ``root/name`` (``name-1``, ... when an earlier process left one by
        that name) that is locked before any other process can see it: made under a
        hidden name that adoption ignores, locked, then renamed. Made in place and then
        locked, a starting process's folder could be taken and deleted by another one
        adopting dead processes' folders (seen in CI: three services starting at once)."""
        os.makedirs(root, exist_ok=True)
        spool = cls(tempfile.mkdtemp(prefix=".new-", dir=root), **options)
        for n in range(1000):
            target = os.path.join(root, name if n == 0 else f"{name}-{n}")
            if os.path.lexists(target):
                continue
            try:
                os.rename(spool.directory, target)  # an empty folder made meanwhile by that name is replaced
            except OSError:
                continue
            spool.directory = target
            return spool
        spool.close()
        spool.remove()
        raise SpoolBusy(os.path.join(root, name))

    @classmethod
    def take_dead(cls, path: str, **options: Any) -> Spool | None:
        """The spool folder ``path`` if no live process holds it, renamed first to a name
        of this process's (``pid-adopt-<pid>-<random>`` beside it) while its lock is held:
        of several processes adopting at once one wins and the others find nothing, so
        no two move the same segments or delete a folder under another. None when the
        folder is a live process's or gone. (The renamed folder keeps the ``pid-``
        prefix: if this process dies adopting, the next one adopts it.)"""
        try:
            fd = os.open(os.path.join(path, ".lock"), os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            mine = os.path.join(os.path.dirname(path), f"pid-adopt-{os.getpid()}-{os.urandom(4).hex()}")
            os.rename(path, mine)
        except OSError:
            return None  # a live process's, or another process took it first
        finally:
            os.close(fd)
        return cls(mine, **options)  # unseen between the unlock and this lock but by adopters, who pass it on

    @property
    def _cursor_path(self) -> str:
        return os.path.join(self.directory, "cursor")

    @property
    def _gap_path(self) -> str:
        return os.path.join(self.directory, "gap")

    def _after_fork(self) -> None:
        # The open segment and its mapping are the parent's: a child that wrote into
        # them would overwrite the parent's lines. It lets go of them (unmapping in the
        # child only) and opens a segment of its own on its first write.
        if self._map is not None:
            self._map.close()
        if self._fd is not None:
            os.close(self._fd)
        self._map, self._fd, self._cap, self._size = None, None, 0, 0
        self._unsynced = set()
        self._lock = threading.Lock()

    def segments(self) -> list[str]:
        return _segments(self.directory)

    def __bool__(self) -> bool:
        return bool(self.segments()) or os.path.exists(self._gap_path)

    def _next_name(self) -> str:
        """A new segment's name: after every existing one, and never a name used before
        (a ``cursor`` left by a process killed mid-replay must not match a new segment)."""
        segs = self.segments()
        index = int(segs[-1][4:16]) + 1 if segs else 1
        return f"seg-{index:012d}-{os.urandom(4).hex()}.log"

    def _open_segment(self, need: int) -> None:
        """A new segment with room for at least ``need`` bytes, reserved on disk first
        (``posix_fallocate``: a full disk is an ``OSError`` here, never a ``SIGBUS``
        when a mapped page is first written) and mapped."""
        path = os.path.join(self.directory, self._next_name())
        cap = max(need, min(self.segment_bytes, MAP_BYTES))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, 0, cap)
            self._map = mmap.mmap(fd, cap, mmap.MAP_SHARED, mmap.PROT_WRITE | mmap.PROT_READ)
        except BaseException:
            os.close(fd)
            os.remove(path)
            raise
        self._fd, self._cap, self._size, self._path = fd, cap, 0, path

    def _write(self, data: bytes, lines: Sequence[bytes]) -> None:
        """Append ``data`` (``lines``, joined); the caller holds ``_lock``. No room: dropped.

        A copy into the segment's shared mapping: no system call and the GIL kept
        (a ``write`` released it, and taking it back cost more than the write). The
        bytes are the file's page cache as soon as they are copied, so a ``kill -9``
        right after cannot lose them; :meth:`sync` fsyncs them like written ones.
        """
        if self._bytes + len(data) > self.max_bytes:
            self._drop(lines)
            return
        end = self._size + len(data)
        if self._map is None or end > self._cap:
            self._close_segment()
            self._open_segment(len(data))
            end = len(data)
        assert self._map is not None
        self._map[self._size : end] = data
        self._size = end
        self._bytes += len(data)
        self._dirty = True
        self.appended += len(lines)

    def _drop(self, lines: Sequence[bytes]) -> None:
        """No room: count the lines and widen the trail-gap marker (kept in ``gap``,
        replaced atomically, so a crash keeps the window too)."""
        times = [int(t) for t in (line.split(b"\t", TIME + 2)[TIME] for line in lines) if t.isdigit()]
        first, last, count = min(times, default=0), max(times, default=0), len(lines)
        old = self._read_gap()
        if old is not None:
            f = old.split(b"\t")
            first, last = min(first, int(f[1])) if f[1] else first, max(last, int(f[4] or 0))
            count += int(f[7] or 0)
        tmp = self._gap_path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(trail_gap_line(first, last, count, self.source))
        os.replace(tmp, self._gap_path)
        self.dropped += len(lines)
        stats.incr("audit.spool_dropped", len(lines))
        stats.warn("audit.spool_dropped", "audit spool %s full (%d bytes): %d records dropped, reported as a "
                   "gap in the trail", self.directory, self.max_bytes, len(lines))

    def _read_gap(self) -> bytes | None:
        return _read_gap(self.directory)

    def append_line(self, line: bytes) -> None:
        """Journal one line now (a single ``write``; fsynced later, by :meth:`sync` or :meth:`rotate`)."""
        with self._lock:
            self._write(line + b"\n", (line,))

    def append(self, lines: Sequence[bytes], *, sync: bool = True) -> None:
        """Spool one batch: a single write of whole lines, then fsync unless ``sync`` is False."""
        if not lines:
            return
        with self._lock:
            self._write(b"\n".join(lines) + b"\n", lines)
            if sync:
                self._sync_locked()

    def sync(self) -> None:
        """Make every line appended so far durable (one fsync, only if needed: the open
        segment, plus any closed one not fsynced yet and not shipped meanwhile)."""
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        if self.fsync:
            if self._dirty and self._fd is not None:
                os.fsync(self._fd)
            for path in sorted(self._unsynced):
                _fsync_path(path)
                self._unsynced.discard(path)
        self._dirty = False
        self.durable = self.appended

    @property
    def pending(self) -> bool:
        """Lines appended that are not in a closed segment yet (the open one has data)."""
        return self._size > 0

    def rotate(self) -> None:
        """Close the open segment (fsynced first), so that :meth:`replay` may ship it;
        new lines go to a new segment."""
        with self._lock:
            self._sync_locked()
            self._close_segment()

    def _close_segment(self) -> None:
        """Unmap the open segment and cut its unused reserved tail (a process killed
        first leaves NUL bytes after its last line: replay ignores a tail without newline).
        Not fsynced here: a dirty segment is remembered, for the next :meth:`sync`."""
        if self._fd is not None:
            if self._dirty:
                self._unsynced.add(self._path)
                self._dirty = False
            if self._map is not None:
                self._map.close()
                self._map = None
            try:
                os.ftruncate(self._fd, self._size)
            finally:
                os.close(self._fd)
                self._fd = None
                self._size = 0
                self._cap = 0

    def _read_cursor(self) -> tuple[str, int]:
        return _read_cursor(self.directory)

    def _write_cursor(self, name: str, offset: int) -> None:
        tmp = self._cursor_path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{name} {offset}")
        os.replace(tmp, self._cursor_path)

    def _batches(self, name: str, start: int, batch: int) -> Iterator[tuple[list[bytes], int]]:
        return _batches(self.directory, name, start, batch)

    def replay(self, sink: Sink, batch: int = 1000) -> int:
        """Send every *closed* segment to ``sink``, oldest first; returns lines sent.

        The open segment is closed first (:meth:`rotate`), so everything appended
        before the call is sent. Stops by raising the sink's :class:`SinkUnavailable`
        when it fails again; what was sent so far is not sent again (the cursor
        moved past it).

        A sink that outlives this machine (``outlives_host``: the Kafka topic, written
        with ``acks=all``) makes the lines durable once it took them, so the segment
        is closed without an fsync and only fsynced if the shipping fails; a segment
        shipped and removed within the kernel's writeback delay is then never written
        to the disk at all. Otherwise (SQLite on this host) it is fsynced first.
        """
        sent = 0
        with self._lock:  # close and list at once: an append from here opens a newer segment
            if not getattr(sink, "outlives_host", False):
                self._sync_locked()
            shipped = self.appended
            self._close_segment()
            names = self.segments()
        try:
            sent = self._send(sink, batch, names)
        except BaseException:
            with self._lock:  # what stays here waits for the sink: make it durable
                try:
                    self._sync_locked()
                except OSError as exc:
                    stats.record_failure("audit.spool_sync_failed", "audit spool %s: fsync failed: %r",
                                         self.directory, exc)
            raise
        with self._lock:
            self.durable = max(self.durable, shipped)
        return sent

    def _send(self, sink: Sink, batch: int, names: list[str]) -> int:
        sent = 0
        for name in names:
            cur_name, offset = self._read_cursor()
            start = offset if cur_name == name else 0
            for lines, pos in self._batches(name, start, batch):
                if lines:
                    sink.write(lines)
                    sent += len(lines)
                self._write_cursor(name, pos)
            path = os.path.join(self.directory, name)
            size = os.path.getsize(path)
            os.remove(path)
            with self._lock:
                self._bytes = max(0, self._bytes - size)
                self._unsynced.discard(path)
        if os.path.exists(self._cursor_path):
            os.remove(self._cursor_path)
        with self._lock:
            gap = self._read_gap()
        if gap is not None:  # after the records it explains, and only once the sink took them
            sink.write([gap])
            sent += 1
            with self._lock:
                if self._read_gap() == gap:  # not widened meanwhile
                    os.remove(self._gap_path)
        return sent

    def adopt(self, other: Spool) -> int:
        """Take over the segments of a spool no live process holds (a dead process's
        ``pid-*`` folder): they are moved in as the newest closed segments, and
        replayed with ours. The segment its replay was in the middle of is cut at its
        cursor (only the lines not sent yet are taken), so nothing it sent is sent
        again. Returns the number of segments moved."""
        moved = 0
        cur_name, offset = other._read_cursor()
        with self._lock:
            self._close_segment()
            for name in other.segments():
                source, target = os.path.join(other.directory, name), os.path.join(self.directory, self._next_name())
                if name == cur_name and offset > 0:
                    _copy_tail(source, offset, target)
                    os.remove(source)
                else:
                    os.replace(source, target)
                self._bytes += os.path.getsize(target)
                moved += 1
            gap = other._read_gap()
            if gap is not None:  # its trail-gap marker travels as a line of its own segment
                with open(os.path.join(self.directory, self._next_name()), "wb") as fh:
                    fh.write(gap + b"\n")
                os.remove(other._gap_path)
                moved += 1
        return moved

    def read_all(self) -> Iterator[list[bytes]]:
        """Every line of this directory's segments not yet replayed (tests read spools directly)."""
        return _read_directory(self.directory, 10_000)

    def close(self) -> None:
        with self._lock:
            self._sync_locked()
            self._close_segment()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def remove(self) -> None:
        """Delete this (emptied, closed) spool's folder: an adopted ``pid-*`` one."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            try:
                os.remove(os.path.join(self.directory, name))
            except OSError:
                pass
        try:
            os.rmdir(self.directory)
        except OSError:
            pass


# --- reading a spool folder without owning it (the CLI, tests) --------------------------

def _segments(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("seg-") and n.endswith(".log"))


def _read_cursor(directory: str) -> tuple[str, int]:
    """The replay's progress in ``directory``: (segment name, offset sent up to)."""
    try:
        with open(os.path.join(directory, "cursor")) as fh:
            name, _, offset = fh.read().partition(" ")
            return name, int(offset)
    except (OSError, ValueError):
        return "", 0


def _read_gap(directory: str) -> bytes | None:
    try:
        with open(os.path.join(directory, "gap"), "rb") as fh:
            line = fh.read().strip()
    except OSError:
        return None
    return line if is_valid(line) else None


def _batches(directory: str, name: str, start: int, batch: int) -> Iterator[tuple[list[bytes], int]]:
    """(lines, offset after them) from one segment, skipping a torn tail (and the NUL
    bytes after the last line of a segment left open by a killed process)."""
    with open(os.path.join(directory, name), "rb") as fh:
        fh.seek(start)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    pos = start
    for i in range(0, len(lines), batch):
        chunk = lines[i : i + batch]
        pos += sum(map(len, chunk)) + len(chunk)
        good = valid_lines(chunk)
        if len(good) != len(chunk):
            stats.incr("audit.spool_invalid", len(chunk) - len(good))
        yield good, pos


def _fsync_path(path: str) -> None:
    """fsync a closed segment by name; one that is gone was shipped and removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_tail(source: str, offset: int, target: str) -> None:
    """``source`` from ``offset`` on into the new file ``target``, fsynced."""
    with open(source, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    with open(target, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _read_directory(directory: str, batch: int) -> Iterator[list[bytes]]:
    """The lines of one spool folder not yet replayed: each segment (from the cursor
    in the one its replay was in), then its trail-gap marker. A segment that
    disappears meanwhile was replayed (or adopted) by its live owner: skipped."""
    try:
        names = _segments(directory)
    except OSError:
        return
    cur_name, offset = _read_cursor(directory)
    for name in names:
        try:
            for lines, _ in _batches(directory, name, offset if name == cur_name else 0, batch):
                yield lines
        except FileNotFoundError:
            continue
    gap = _read_gap(directory)
    if gap is not None:
        yield [gap]


def read_spool(directory: str, batch: int = 10_000) -> Iterator[list[bytes]]:
    """Every record a spool folder holds that was not replayed into the sink yet: its
    own segments and those of its ``pid-*`` folders (processes that found the folder
    taken: live ones, and dead ones not adopted yet), each read from its own replay
    cursor, so what a replay already sent is not read again. Takes no lock and
    changes nothing: a live process may be writing and replaying meanwhile (a
    segment it replays away while we read is then read in part or not at all)."""
    yield from _read_directory(directory, batch)
    try:
        subfolders = sorted(n for n in os.listdir(directory) if n.startswith("pid-"))
    except OSError:
        return
    for name in subfolders:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            yield from _read_directory(path, batch)
