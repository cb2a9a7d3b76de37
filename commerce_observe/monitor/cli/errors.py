"""How every sub-command reports bad input: one line, exit code 2, never a traceback.

Two halves, shared by all sub-commands so a new one gets them for free:

* **at parse time**, the argument types below (``input_file``, ``output_file``,
  ``port``, ``when``, ``zone``, ``store_spec``, ``ratio``, ``count``, ``url``...)
  turn a bad value into ``argparse.ArgumentTypeError``; :class:`Parser` prints it
  as one line naming the option and exits 2 (plain argparse prints the whole
  usage block first);
* **at run time**, a command raises :class:`UsageError` (or lets an ``OSError``
  about a user-named file or port escape); ``main()`` prints one line and exits 2.

The table test (``tests/cli/test_bad_input.py``) reads each option's ``type`` to
know which bad values to try, so using these types is what puts an option under
test. :class:`HelpFormatter` keeps help plain text (no reStructuredText
backticks) and adds ``(default: ...)`` to every option that has one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UsageError(Exception):
    """A user's mistake found while running: the message is the whole story (one line)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Raw descriptions (our docstrings are laid out by hand), plain text, defaults shown."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain(text))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain(action.help or "")
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS, [], ()) and not isinstance(default, bool)
        if shown and action.option_strings and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text


def plain(text: str) -> str:
    """``name`` / `name` → name: help is read in a terminal, not rendered."""
    return text.replace("``", "").replace("`", "'") if "`" in text else text


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit 2; sub-parsers inherit it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    return " ".join(str(message).split()) or "error"


# --- argument types ---------------------------------------------------------------------------

_SNIFF = 8192


def _check_text(path: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF)
    if b"\x00" in head:
        raise argparse.ArgumentTypeError(f"{path}: a binary file, expected text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniff boundary
            raise argparse.ArgumentTypeError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def input_file(raw: str) -> str:
    """A readable text file ('-' is stdin): missing, unreadable, a directory or binary is refused."""
    if raw == "-":
        return raw
    if not raw:
        raise argparse.ArgumentTypeError("empty file name")
    if os.path.isdir(raw):
        raise argparse.ArgumentTypeError(f"{raw}: a directory, expected a file")
    try:
        _check_text(raw)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{raw}: no such file") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{raw}: cannot read ({exc.strerror or exc})") from None
    return raw


def existing_file(raw: str) -> str:
    """A file that exists and can be read (any content: a SQLite database, a model)."""
    if os.path.isdir(raw) or not os.path.exists(raw):
        raise argparse.ArgumentTypeError(f"{raw}: no such file")
    if not os.access(raw, os.R_OK):
        raise argparse.ArgumentTypeError(f"{raw}: not readable")
    return raw


def existing_dir(raw: str) -> str:
    if not os.path.isdir(raw):
        raise argparse.ArgumentTypeError(f"{raw}: no such directory")
    return raw


def output_file(raw: str) -> str:
    """A file we may create ('-' is stdout): its directory must exist and it must not be a directory."""
    if raw == "-":
        return raw
    if not raw or os.path.isdir(raw):
        raise argparse.ArgumentTypeError(f"{raw!r}: not a file name")
    parent = os.path.dirname(os.path.abspath(raw))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{raw}: directory {parent} does not exist")
    return raw


def _number(raw: str, convert: Callable[[str], Any], what: str) -> Any:
    try:
        return convert(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {raw!r}") from None


def port(raw: str) -> int:
    value: int = _number(raw, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0-65535")
    return value


def count(raw: str) -> int:
    """A whole number >= 0."""
    value: int = _number(raw, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive(raw: str) -> int:
    value = count(raw)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def seconds(raw: str) -> float:
    value: float = _number(raw, float, "a number of seconds")
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{raw} seconds: expected a positive number")
    return value


def ratio(raw: str) -> float:
    """A share from 0 to 1."""
    value: float = _number(raw, float, "a number")
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{raw} is not a share from 0 to 1")
    return value


def zone(raw: str) -> str:
    """An IANA time zone name (``Europe/Berlin``, ``UTC``)."""
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(f"unknown time zone {raw!r} (examples: UTC, Europe/Berlin)") from None
    return raw


def when(raw: str) -> datetime:
    """An ISO 8601 time (a time without zone is read as UTC)."""
    try:
        dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {raw!r} (ISO 8601 like 2026-05-01T12:00Z)") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def url(raw: str) -> str:
    parts = urlsplit(raw)
    try:
        parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in URL {redact_url(raw)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {redact_url(raw)!r}")
    return raw


def host_port(raw: str) -> str:
    """``HOST:PORT`` (Kafka bootstrap servers: comma separated)."""
    for part in raw.split(","):
        host, sep, number = part.strip().rpartition(":")
        if not sep or not host or not number.isdigit() or not 0 < int(number) <= 65535:
            raise argparse.ArgumentTypeError(f"not HOST:PORT: {part.strip()!r}")
    return raw


def store_spec(raw: str) -> str:
    """``sqlite:PATH``, a ``.db``/``.sqlite`` path, or an Elasticsearch ``http(s)://`` URL."""
    from commerce_observe.store.store import check_store_spec

    try:
        return check_store_spec(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def redact_url(text: str) -> str:
    from commerce_observe._internal.redact import redact_credentials

    return redact_credentials(text)


def open_text(path: str, what: str) -> IO[str]:
    """Open a file named on the command line for reading, or raise a one-line UsageError."""
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None


TYPES: dict[str, Callable[[str], Any]] = {
    f.__name__: f for f in (input_file, existing_file, existing_dir, output_file, port, count, positive, seconds, ratio, zone, when,
                            url, host_port, store_spec)
}


#: The optional modules a command may need, and the extra (pyproject.toml) that installs each.
EXTRAS: tuple[tuple[str, str], ...] = (
    ("numpy", "anomaly"), ("kafka", "kafka"), ("confluent_kafka", "confluent"), ("aiokafka", "aiokafka"),
    ("pika", "rabbitmq"), ("elasticsearch", "elasticsearch"), ("ecs_logging", "logs"),
    ("prometheus_client", "metrics"), ("opentelemetry.exporter.prometheus", "metrics"),
    ("opentelemetry.exporter.otlp", "otlp"),
)


def missing_extra(exc: BaseException) -> str | None:
    """The line naming what to install when ``exc`` is an optional module not installed, else None."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    for module, extra in EXTRAS:
        if exc.name == module or exc.name.startswith(module + "."):
            return f"needs {module}, which is not installed: pip install 'commerce-observe[{extra}]'"
    return None


def failure(exc: BaseException) -> str:
    """What went wrong, for a one-line error: the extra to install, else the exception's type and text."""
    return missing_extra(exc) or f"{type(exc).__name__}: {exc}"


def main_guard(prog: str, run: Callable[[], int], debug: bool = False) -> int:
    """Run a command; a user's mistake becomes one line on stderr and exit code 2."""
    from commerce_observe.config import ConfigError

    try:
        return run()
    except UsageError as exc:
        message = str(exc)
    except ConfigError as exc:
        message = f"configuration: {exc}"
    except OSError as exc:
        name = exc.filename if isinstance(exc.filename, str) else None
        message = f"{name}: {exc.strerror or exc}" if name else f"{exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        message = f"input is not UTF-8 text ({exc.reason} at byte {exc.start})"
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        needs = missing_extra(exc)
        if needs is None:
            if debug:
                raise
            sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {one_line(str(exc))}"
                             f" (run with --debug for the traceback)\n")
            return 1
        message = needs
    sys.stderr.write(f"{prog}: {one_line(message)}\n")
    return 2
