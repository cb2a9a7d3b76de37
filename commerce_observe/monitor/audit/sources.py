"""Reading audit lines from a plain file or stream, in bounded batches.

Files of lines are what ``kafka-console-consumer`` or ``sqlite3`` exports produce
and what the benchmark measures; reading them in 1 MiB chunks keeps memory flat
whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from commerce_observe.agent.audit.record import first_at_or_after


def iter_batches(stream: BinaryIO, chunk_bytes: int = 1 << 20) -> Iterator[list[bytes]]:
    """Whole lines, a chunk at a time; a final line without newline is kept (files may lack it)."""
    rest = b""
    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        lines = (rest + chunk if rest else chunk).split(b"\n")
        rest = lines.pop()  # the unfinished tail waits for the next chunk
        if b"" in lines:
            lines = [x for x in lines if x]
        if lines:
            yield lines
    if rest.strip():
        yield [rest.rstrip(b"\r")]


def read_lines(source: str | BinaryIO, from_ns: int = 0, chunk_bytes: int = 1 << 20) -> Iterator[list[bytes]]:
    """Batches from a path or binary stream, starting at the first record at or after ``from_ns``."""
    stream: BinaryIO = open(source, "rb") if isinstance(source, str) else source
    try:
        started = not from_ns
        for batch in iter_batches(stream, chunk_bytes):
            if not started:
                at = first_at_or_after(batch, from_ns)
                if at is None:
                    continue
                batch = batch[at:]
                started = True
            yield batch
    finally:
        if isinstance(source, str):
            stream.close()
