"""Every sub-command answers bad input in one line, exit code 2, never a traceback.

The sub-commands are enumerated from the parser the ``commerce-observe`` command
builds (``COMMANDS``, and nested actions such as ``alerts evaluate``), so a new
sub-command is covered as soon as it is registered: its help is checked, an
unknown option is tried, and every option is fed the bad values that belong to
its argument type (``commerce_observe.monitor.cli.errors``). The table at the end
holds the run-time mistakes (busy port, unreachable store, a CSV with a broken
row, ...) of the commands that exist today.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commerce_observe.monitor.cli import build_parser, errors, main

ROOT = Path(__file__).resolve().parents[2]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    if not subs and path:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


LEAVES = dict(_leaves(build_parser()))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *expected: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("commerce-observe"), err
    for word in expected:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("cli-files")
    (tmp / "binary.dat").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp / "latin1.csv").write_bytes("timestamp,series,value\n2024-01-01T00:00,caf\xe9,1\n".encode("latin-1") * 3)
    (tmp / "adir").mkdir()
    return {"missing": str(tmp / "no-such-file.csv"), "binary": str(tmp / "binary.dat"),
            "latin1": str(tmp / "latin1.csv"), "dir": str(tmp / "adir"), "nodir": str(tmp / "no-dir" / "out.csv")}


#: Bad values per argument type, by the type's name (files are filled from the fixture).
BAD: dict[str, list[str]] = {
    "input_file": ["{missing}", "{binary}", "{latin1}", "{dir}"],
    "existing_file": ["{missing}", "{dir}"],
    "existing_dir": ["{missing}", "{binary}"],
    "output_file": ["{dir}", "{nodir}"],
    "port": ["-1", "65536", "http"],
    "count": ["-5", "many"],
    "positive": ["0", "-5"],
    "seconds": ["0", "-1", "nan", "inf"],
    "ratio": ["2", "-0.1", "nan"],
    "zone": ["Mars/Olympus_Mons", "../../etc/passwd"],
    "when": ["2024-13-45", "yesterday"],
    "url": ["ftp://example.com", "not a url", "http://host:99999", "http://"],
    "host_port": ["localhost", "host:0", "host:x"],
    "store_spec": ["foo:bar", "sqlite:", "events.txt"],
    "int": ["x", "1.5"],
    "float": ["x"],
}


def _typed_cases() -> list[tuple[tuple[str, ...], str | None, str]]:
    cases: list[tuple[tuple[str, ...], str | None, str]] = []
    for path, parser in LEAVES.items():
        for action in parser._actions:  # noqa: SLF001
            kind = action.type
            if kind is None or kind is str or isinstance(action, argparse._HelpAction):  # noqa: SLF001
                continue
            values = BAD.get(getattr(kind, "__name__", ""), [""])  # an unknown custom type must refuse ""
            option = action.option_strings[-1] if action.option_strings else None
            cases += [(path, option, value) for value in values]
    return cases


def test_every_registered_command_is_enumerated() -> None:
    from commerce_observe.monitor.cli import COMMANDS

    assert {path[0] for path in LEAVES} == set(COMMANDS)


@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_help_is_plain_text_with_help_and_defaults_for_every_option(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*path, "--help"], capsys)
    assert code == 0 and not err
    assert "`" not in out, "reStructuredText backticks in the help"
    for action in LEAVES[path]._actions:  # noqa: SLF001
        if isinstance(action, argparse._HelpAction):  # noqa: SLF001
            continue
        assert action.help, f"{' '.join(path)} {action.dest}: no help text"
        if action.option_strings and action.default not in (None, False, [], ()):
            assert "default" in errors.HelpFormatter("x")._get_help_string(action).lower(), action.dest  # noqa: SLF001


@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_unknown_option_is_one_line(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run_cli([*path, "--no-such-option"], capsys))


@pytest.mark.parametrize(("path", "option", "value"), _typed_cases(), ids=lambda x: str(x)[:40])
def test_bad_value_of_every_typed_option(path: tuple[str, ...], option: str | None, value: str,
                                          files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    value = value.format(**files)
    argv = [*path, option, value] if option else [*path, value]
    assert_one_line_error(*run_cli(argv, capsys), option or "argument")


def test_file_and_url_options_are_validated() -> None:
    """An option naming a file, port, URL, store or time zone must use a validating type."""
    loose = []
    for path, parser in LEAVES.items():
        for action in parser._actions:  # noqa: SLF001
            name = action.dest.replace("_", "-")
            if name.endswith(("file", "port", "url", "store", "bootstrap", "timezone", "calendar", "config")) \
                    and action.type in (None, str):
                loose.append(f"{' '.join(path)} {name}")
    assert not loose


def test_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    from commerce_observe import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"commerce-observe {__version__}"
    code, out, _ = run_cli([], capsys)
    assert code == 2 and "COMMAND" in out


# --- mistakes found while running ------------------------------------------------------------


def _closed_port() -> int:
    from testbed.base import free_port

    return free_port()


def _busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


RUNTIME: dict[str, Callable[[Path, int], tuple[list[str], tuple[str, ...]]]] = {
    "dashboard busy port": lambda tmp, busy: (["dashboard", "--store", f"sqlite:{tmp}/d.db", "--port", str(busy)],
                                             ("cannot listen", str(busy))),
    "dashboard unreachable elasticsearch": lambda tmp, _: (
        ["dashboard", "--elasticsearch", f"http://user:hunter2@127.0.0.1:{_closed_port()}"], ("cannot open",)),
    "dashboard sqlite in a missing directory": lambda tmp, _: (
        ["dashboard", "--store", f"sqlite:{tmp}/missing/x.db"], ("cannot open",)),
    "ship unreachable kafka": lambda tmp, _: (
        ["ship", "--bootstrap", f"127.0.0.1:{_closed_port()}", "--store", f"sqlite:{tmp}/s.db"], ("Kafka at",)),
    "audit no input": lambda tmp, _: (["audit"], ("exactly one input",)),
    "audit sqlite file that is text": lambda tmp, _: (["audit", "--sqlite", _write(tmp, "a.txt", "hello\n")], ("cannot read",)),
    "audit two inputs": lambda tmp, _: (["audit", "--file", _write(tmp, "l.txt", ""), "--sqlite", _write(tmp, "s.db", "")],
                                        ("exactly one",)),
    "anomaly no header": lambda tmp, _: (["anomaly", _write(tmp, "n.csv", "a,b\n1,2\n")], ("columns",)),
    "anomaly broken timestamp": lambda tmp, _: (
        ["anomaly", _write(tmp, "t.csv", "timestamp,series,value\nnot-a-time,orders,1\n")], ("row 2", "not a timestamp")),
    "anomaly bad calendar": lambda tmp, _: (
        ["anomaly", "--calendar", _write(tmp, "c.json", "{]"), _write(tmp, "ok.csv", "timestamp,series,value\n")],
        ("calendar",)),
    "anomaly state that is not a model": lambda tmp, _: (
        ["anomaly", "--state", _write(tmp, "m.npz", "text"), _write(tmp, "ok2.csv", "timestamp,series,value\n")],
        ("state",)),
    "alerts evaluate config not json": lambda tmp, _: (["alerts", "evaluate", "--config", _write(tmp, "c.txt", "x")],
                                                       ("JSON",)),
    "alerts test-notify no receiver": lambda tmp, _: (["alerts", "test-notify"], ("--webhook",)),
    "alerts test-notify smtp without recipient": lambda tmp, _: (["alerts", "test-notify", "--smtp", "127.0.0.1:25"],
                                                                 ("--mail-to",)),
}


@pytest.mark.parametrize("case", list(RUNTIME))
def test_runtime_mistakes_are_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for busy in _busy_port():
        argv, expected = RUNTIME[case](tmp_path, busy)
        code, out, err = run_cli(argv, capsys)
    assert_one_line_error(code, out, err, *expected)
    assert "hunter2" not in out + err
    assert out == "", "nothing (no CSV header) on stdout before the error"


def test_anomaly_csv_has_newline_line_ends_and_no_progress_off_a_terminal(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = "".join(f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,orders,{10 + i % 3}\n" for i in range(100))
    src = _write(tmp_path, "in.csv", "timestamp,series,value\n" + rows)
    out_path = tmp_path / "out.csv"
    code, out, err = run_cli(["anomaly", "--min-history", "24", "-o", str(out_path), src], capsys)
    assert code == 0, err
    data = out_path.read_bytes()
    assert data.startswith(b"timestamp,series,score,actual,expected,lower,upper,alert\n") and b"\r" not in data and data.count(b"\n") > 10
    assert "%" not in err and "\r" not in err  # stderr is not a terminal here: no progress bar


def test_demo_says_when_a_backend_received_nothing(tmp_path: Path) -> None:
    """In a process of its own: the demo installs the agent."""
    port = _closed_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMMERCE_OBSERVE_STRICT": "false"}
    env = {k: v for k, v in env.items() if not k.startswith(("OTEL_", "ELASTIC_APM_"))}
    proc = subprocess.run([sys.executable, "-m", "commerce_observe", "demo", "--orders", "3",
                           "--zipkin", f"http://127.0.0.1:{port}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "received nothing" in lines[-1] and str(port) in lines[-1], proc.stderr


HIDE_MODULE = """
import os
import sys

hidden = os.environ["HIDE_MODULE"]

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == hidden or name.startswith(hidden + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Hide())
from commerce_observe.monitor.cli import main
sys.exit(main(sys.argv[1:]))
"""
MISSING = {  # command line, the module hidden, what the one line says
    "anomaly": (["anomaly", "in.csv"], "numpy", ": needs numpy, which is not installed: pip install 'commerce-observe[anomaly]'"),
    "tour": (["tour", "--out", "tour"], "numpy", ": needs numpy"),
    "watch": (["watch", "--from", "2026-01-01", "--until", "2026-01-02", "--no-http"], "numpy", ": needs numpy"),
    "dashboard": (["dashboard", "--elasticsearch", "http://127.0.0.1:9200"], "elasticsearch",
                  ": store http://127.0.0.1:9200: cannot open it (needs elasticsearch, which is not installed: "
                  "pip install 'commerce-observe[elasticsearch]')"),
    "ship": (["ship", "--bootstrap", "127.0.0.1:9092"], "kafka", ": Kafka at 127.0.0.1:9092: needs kafka"),
    "audit": (["audit", "--bootstrap", "127.0.0.1:9092"], "confluent_kafka", ": cannot read input 127.0.0.1:9092: "
              "needs confluent_kafka, which is not installed: pip install 'commerce-observe[confluent]'"),
}


@pytest.mark.parametrize("case", list(MISSING))
def test_a_missing_extra_is_named_with_what_to_install(case: str, tmp_path: Path) -> None:
    """An optional module not installed: not an internal error but the pip line, exit code 2."""
    command, module, says = MISSING[case]
    _write(tmp_path, "in.csv", "timestamp,series,value\n2024-01-01T00:00:00Z,orders,1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HIDE_MODULE": module}
    proc = subprocess.run([sys.executable, "-c", HIDE_MODULE, *command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"commerce-observe {case}{says}"), proc.stderr


def test_a_real_process_prints_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "commerce_observe", "anomaly", str(tmp_path / "nope.csv")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no such file" in proc.stderr


def test_cli_output_is_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever a command prints passes the masker: here a series named after a card, and a
    store URL with credentials in an error line."""
    rows = "".join(f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,pan 4111 1111 1111 1111,{10 + i % 3}\n"
                   for i in range(60))
    src = _write(tmp_path, "in.csv", "timestamp,series,value\n" + rows)
    code, out, err = run_cli(["anomaly", "--min-history", "24", src], capsys)
    assert code == 0 and "4111 1111 1111 1111" not in out and "[CARD ****1111]" in out
    code, out, err = run_cli(["dashboard", "--elasticsearch", f"http://ann:s3cr3t@127.0.0.1:{_closed_port()}"], capsys)
    assert code == 2 and "s3cr3t" not in err and "[CREDENTIALS]" in err
