"""The `coffeeshop` command as a user runs it: a real subprocess, real files and databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, execute_sql, receipt, run_coffeeshop, write_lines

from coffeeshop.cli import command_lines
from coffeeshop.store import Store
from coffeeshop.store.migrations import SCHEMA_VERSION

COMMANDS = command_lines()


run = run_coffeeshop


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(tmp_path: Path, command: str) -> None:
    result = run(*command.split(), "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Example:" in result.stdout


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for command in COMMANDS:
        assert f"coffeeshop {command}" in readme


def test_sample_syncs_into_sqlite_and_prints_the_four_tables(tmp_path: Path) -> None:
    result = run("sample", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for table in ("receipts_summary", "store_monthly", "item_performance", "store_peak_hours"):
        assert f"\n{table} (" in result.stdout
    assert "Crème Brûlée" in result.stdout
    assert (tmp_path / "sample.db").exists()  # a database of its own
    assert not (tmp_path / "analysis.db").exists()
    again = run("sample", cwd=tmp_path)  # already synced: the tables again
    assert again.returncode == 0, again.stderr
    assert "0 applied" in again.stdout and "\nitem_performance (" in again.stdout


def test_sample_works_after_the_readme_pieces_and_never_offers_to_delete_them(
    tmp_path: Path,
) -> None:
    """The README's "Try the pieces by hand" fills analysis.db; `sample` (its --help example,
    `make sample`) still works, and `sample --db` of that database is refused without
    offering a way out that deletes the user's receipts."""
    source = tmp_path / "receipts.jsonl"
    write_lines(source, [receipt(n) for n in range(1, 31)])
    analysis = "sqlite:///analysis.db"
    assert run("sync", "--source", str(source), "--db", analysis, cwd=tmp_path).returncode == 0
    env = {"SQL_DSN": analysis}  # the user's database, configured for every command
    help_text = run("sample", "--help", cwd=tmp_path).stdout
    example = next(line for line in help_text.splitlines() if "Example: coffeeshop" in line)
    printed = example.split("Example: coffeeshop ", 1)[1].split()
    shown = run(*printed, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Crème Brûlée" in shown.stdout
    plain = run("sample", cwd=tmp_path, env=env)  # what `make sample` runs
    assert plain.returncode == 0, plain.stderr
    makefile = (ROOT / "Makefile").read_text()
    assert "\t$(BIN)/coffeeshop sample\n" in makefile and "sample --db" not in makefile
    into_analysis = run("sample", "--db", analysis, cwd=tmp_path)
    assert_one_line_error(into_analysis, "the sample goes into a database of its own")
    assert "--replace-source" not in into_analysis.stderr
    assert "run `coffeeshop sample`" in into_analysis.stderr
    assert receipts_in(f"sqlite:///{tmp_path / 'analysis.db'}") == 30
    # `sync` of another source offers --replace-source only with what it would delete.
    other = tmp_path / "other.jsonl"
    write_lines(other, [receipt(99), "garbage"])
    refused = run("sync", "--source", str(other), "--db", analysis, cwd=tmp_path)
    assert_one_line_error(refused, "not syncing")
    assert "--replace-source" in refused.stderr
    assert "(it deletes the 30 receipt(s) and 0 quarantine entries of jsonl:" in refused.stderr
    assert receipts_in(f"sqlite:///{tmp_path / 'analysis.db'}") == 30


def test_sync_reports_counts_and_quarantine_lists_the_rejects(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1), receipt(2, total=-1), "garbage"])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    result = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 applied, 2 quarantined" in result.stderr
    listed = run("quarantine", "--db", db, "--raw", cwd=tmp_path)
    assert "line 2 (byte" in listed.stdout and "total_price: must be ≥ 0" in listed.stdout
    assert "line 3 (byte" in listed.stdout and "invalid JSON" in listed.stdout
    assert "    garbage" in listed.stdout
    assert listed.stdout.rstrip().endswith("2 quarantined entries")


def test_sync_summarises_quarantine_warnings_instead_of_one_per_batch(tmp_path: Path) -> None:
    """A file with an invalid line in every batch logged a WARNING per batch (26 for one file)."""
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(n) if n % 10 else "garbage" for n in range(1, 401)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    started = time.monotonic()
    result = run("sync", "--source", str(source), "--db", db, "--batch-size", "10", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "40 quarantined" in result.stderr  # the command's own summary line
    warnings = [
        line for line in result.stderr.splitlines() if "WARNING" in line and "quarantined" in line
    ]
    # The first at once, at most one more per 10 s, and the total at the end.
    assert len(warnings) <= 2 + elapsed / 10, warnings
    assert "batch 1: 1 event(s) quarantined" in warnings[0]
    assert warnings[-1].endswith(
        f"40 event(s) quarantined in all by this run (see `coffeeshop quarantine --db {db}`)"
    )


def test_env_and_dotenv_configure_the_database(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    (tmp_path / ".env").write_text(f"SQL_DSN=sqlite:///{tmp_path / 'from_env.db'}\n")
    assert run("sync", "--source", str(source), cwd=tmp_path).returncode == 0
    assert (tmp_path / "from_env.db").exists()
    other = tmp_path / "from_var.db"
    result = run(
        "sync",
        cwd=tmp_path,
        env={"COFFEESHOP_DB": f"sqlite:///{other}", "COFFEESHOP_SOURCE": str(source)},
    )
    assert result.returncode == 0 and other.exists()


def test_a_missing_source_file_is_one_line_and_touches_no_database(tmp_path: Path) -> None:
    result = run("sync", "--source", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "analysis.db").exists()


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--db", "not a url"], {}, "not a database URL"),
        (["--db", "oracle://x@y/z"], {}, "unsupported database 'oracle'"),
        (["--db", "mysql+pymysql://root@127.0.0.1:1/test"], {}, "cannot use database"),
        (["--db", "sqlite:////no/such/dir/a.db"], {}, "cannot use database"),
        ([], {"COFFEESHOP_BATCH_SIZE": "lots"}, "COFFEESHOP_BATCH_SIZE"),
        ([], {"COFFEESHOP_TIMEZONE": "Mars/Olympus"}, "unknown IANA time zone"),
        (["--once", "--follow"], {}, "exclude each other"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    result = run("sync", "--source", str(source), *args, cwd=tmp_path, env=env)
    assert_one_line_error(result, fragment)


@pytest.mark.mariadb
def test_a_wrong_password_never_appears_in_any_output(tmp_path: Path, mysql_url: str) -> None:
    from sqlalchemy.engine import make_url

    secret = "S3cr3t-Pa55word-xyz"
    url = make_url(mysql_url).set(password=secret).render_as_string(hide_password=False)
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    for args in (
        ["sync", "--source", str(source)],
        ["tables"],
        ["reconcile", "--source", str(source)],
    ):
        result = run(*args, "--db", url, cwd=tmp_path, env={"COFFEESHOP_LOG_LEVEL": "DEBUG"})
        assert_one_line_error(result, "Access denied")
        assert secret not in result.stdout + result.stderr
        assert "***" in result.stderr


def test_a_second_writer_exits_with_a_clear_message(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    with Store(db) as store:
        store.upgrade()
        store.acquire_writer()
        result = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
        assert_one_line_error(result, "another coffeeshop writer holds the lock", code=3)
    result = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert result.returncode == 0


def test_reconcile_finds_tampering_and_repair_fixes_it(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(i, items=[("Latte", 1), ("Tea", i)]) for i in range(1, 6)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sync", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0
    clean = run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path)
    assert clean.returncode == 0 and "reconcile: 0 difference(s)" in clean.stdout
    with Store(db) as store:
        execute_sql(store, "UPDATE item_performance SET total_sold = 99 WHERE item_name = 'Tea'")
    found = run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path)
    assert found.returncode == 1
    assert "item_performance 'Tea': expected 15, found 99" in found.stdout
    repaired = run("reconcile", "--source", str(source), "--db", db, "--repair", cwd=tmp_path)
    assert repaired.returncode == 0 and "repaired" in repaired.stdout
    assert run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0


def test_tables_and_db_upgrade_work_on_an_empty_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    upgraded = run("db", "upgrade", "--db", db, cwd=tmp_path)
    version = SCHEMA_VERSION
    assert upgraded.returncode == 0 and f"schema version 0 -> {version}" in upgraded.stdout
    again = run("db", "upgrade", "--db", db, cwd=tmp_path)
    assert f"up to date (version {version})" in again.stdout
    shown = run("tables", "--db", db, cwd=tmp_path)
    assert shown.returncode == 0 and "store_monthly (0 rows)" in shown.stdout


def test_a_new_database_says_it_created_the_tables_and_an_upgrade_says_it_migrates(
    tmp_path: Path,
) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    new = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    created = f"created the tables (schema version {SCHEMA_VERSION})"
    assert new.stderr.count(created) == 1, new.stderr
    assert "migrating" not in new.stderr
    with Store(db) as store:  # back to an older release's version number
        execute_sql(store, "UPDATE cs_meta SET value = '3' WHERE name = 'schema_version'")
    upgraded = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"migrating the database schema to version {SCHEMA_VERSION}" in upgraded.stderr
    assert "created the tables" not in upgraded.stderr
    again = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert "migrating" not in again.stderr and "created the tables" not in again.stderr
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"(the schema version, now {SCHEMA_VERSION})" in readme
    assert f"`{created}`" in readme  # the line a new database logs, as the README quotes it


HEAVY = ("prefect", "fastapi", "pymongo", "sqlalchemy", "uvicorn", "pydantic")
LOADED = """
import runpy, sys
sys.argv = ["coffeeshop", *sys.argv[1:]]
try:
    runpy.run_module("coffeeshop", run_name="__main__")
except SystemExit:
    pass
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_imports_no_heavy_library(tmp_path: Path, command: str) -> None:
    """`--help` must stay fast: Prefect, FastAPI, PyMongo, SQLAlchemy, uvicorn and pydantic are
    imported only inside the commands that use them (see bench/bench_cli.py for the timings).
    pydantic came in twice: through the settings module, and through Typer coercing a group's
    unused `--help` (None) with a pydantic adapter."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *command.split(), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Usage:" in result.stdout
    loaded = set(result.stderr.split())
    assert "typer" in loaded
    assert loaded.isdisjoint(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize("group", [False, True], ids=["to-the-pid", "to-the-group"])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sync_stops_cleanly_then_exits_128_plus_the_signal(
    tmp_path: Path, signum: int, code: int, group: bool
) -> None:
    """Ctrl-C (or SIGTERM) during `sync`: the batch in hand commits, then the exit status says
    the run was interrupted (130 / 143, as shells expect), not finished (0). Sent to the
    process group (a terminal's Ctrl-C, systemd, `timeout`), the signal also reaches the
    forked source reader: that must not turn the clean stop into a crash (it used to end the
    reader at once, and the engine died on the closed pipe with an EOFError)."""
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(i) for i in range(1, 51)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    following = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffeeshop",
            "sync",
            "--follow",
            "--source",
            str(source),
            *["--db", db],
        ],
        cwd=tmp_path,
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "INFO"},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
    )
    try:
        deadline = time.monotonic() + 60
        while receipts_in(db) < 50:
            assert time.monotonic() < deadline and following.poll() is None
            time.sleep(0.2)
        if group:
            os.killpg(following.pid, signum)
        else:
            following.send_signal(signum)
        _, stderr = following.communicate(timeout=60)
    finally:
        if following.poll() is None:
            following.kill()
    assert following.returncode == code, stderr
    assert "synced 50 event(s)" in stderr and "Traceback" not in stderr


def receipts_in(db: str) -> int:
    path = Path(db.removeprefix("sqlite:///"))
    if not path.exists():
        return 0
    with Store(db) as store:
        store.upgrade()
        return sum(1 for _ in store.iter_receipts())


# -- what the commands print ------------------------------------------------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\x9b1m"


def test_tables_and_quarantine_escape_control_characters(tmp_path: Path) -> None:
    """issue 10.13: receipt content with terminal escapes (retitle, clipboard, clear screen)
    is printed escaped, never as the raw control characters."""
    source = tmp_path / "r.jsonl"
    write_lines(
        source,
        [
            receipt(1, items=[(f"Latte{ESCAPES}", 1)]),
            receipt(2, total=-1, items=[(f"Tea{ESCAPES}", 1)]),
            f"not json {ESCAPES}",
        ],
    )
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sync", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0
    csv = ["tables", "--format", "csv", "--table", "item_performance"]
    for args in (["tables"], csv, ["quarantine", "--raw"]):
        shown = run(*args, "--db", db, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "\x9b" not in shown.stdout
        assert "\\x1b]0;pwned\\x07" in shown.stdout
    assert "Latte\\x1b]0;pwned\\x07\\x1b]52;c;" in run("tables", "--db", db, cwd=tmp_path).stdout


def _raw_controls(text: str) -> list[str]:
    """The control characters of `text` but the newlines ending its lines."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_a_file_name_with_control_characters_is_printed_escaped(tmp_path: Path) -> None:
    """issue 18.14: a source file name with terminal escapes and a newline (a forged log line)
    reached the terminal raw in errors, log lines and notes; each is printed escaped, on one
    line, like receipt content."""
    name = f"r{ESCAPES}\n2026-12-07T00:00:00.000 ERROR   forged.jsonl"
    source = tmp_path / name
    write_lines(source, [receipt(1), "not json"])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    outputs = []
    missing = run(
        "sync", "--source", str(tmp_path / f"gone{ESCAPES}\n.jsonl"), "--db", db, cwd=tmp_path
    )
    assert missing.returncode == 2
    assert len(missing.stderr.splitlines()) == 1 and "does not exist" in missing.stderr
    outputs.append(missing.stderr)
    for _ in range(2):  # the second run logs "resuming jsonl:<path> after …"
        synced = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr
        outputs.append(synced.stderr)
    assert "resuming jsonl:" in outputs[-1]
    other = tmp_path / f"o{ESCAPES}.jsonl"
    write_lines(other, [receipt(1)])
    noted = run("reconcile", "--source", str(other), "--db", db, cwd=tmp_path)
    assert "note: the database was synced from" in noted.stderr
    outputs += [noted.stdout, noted.stderr]
    source.write_text("rewritten\n")  # shorter than the checkpoint: one SourceChanged line
    changed = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert changed.returncode != 0 and "truncated or replaced" in changed.stderr
    outputs.append(changed.stderr)
    generated = run(
        "generate", "--count", "1", "--out", str(tmp_path / f"g{ESCAPES}.jsonl"), cwd=tmp_path
    )
    assert generated.returncode == 0, generated.stderr
    outputs.append(generated.stderr)
    listed = run("quarantine", "--db", db, cwd=tmp_path)
    outputs.append(listed.stdout)
    for output in outputs:
        assert _raw_controls(output) == [], output
        # The newline in the name is `\\n`: no line of the output is the forged one.
        assert not any(line.startswith("2026-12-07T00:00:00.000") for line in output.splitlines())
        assert "forged" not in output or "\\x1b]0;pwned\\x07" in output


ITEMS = ("--table", "item_performance")


def test_tables_csv_guards_formulas_and_quotes_line_breaks(tmp_path: Path) -> None:
    """issue 18.9: `tables --format csv` wrote `=`, `+`, `-`, `@` cells unguarded (the API's
    CSV guards them) and a newline inside a name as the two characters `\\n`; each cell is now
    an RFC 4180 cell a spreadsheet shows as text."""
    import csv
    import io

    names = {
        '=HYPERLINK("http://x.example","y")': '\'=HYPERLINK("http://x.example","y")',
        "+1+2": "'+1+2",
        "-3": "'-3",
        "@SUM(A1)": "'@SUM(A1)",
        "Two\nlines": "Two\nlines",
        "Tab\tand\rCR": "Tab\tand\rCR",
        'Say "hi", twice': 'Say "hi", twice',
        f"Esc{ESCAPES}": "Esc\\x1b]0;pwned\\x07\\x1b]52;c;ZWNobyBoaQ==\\x07\\x1b[2J\\x9b1m",
    }
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(i, items=[(n, i + 1)]) for i, n in enumerate(names)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sync", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0
    shown = subprocess.run(
        [sys.executable, "-m", "coffeeshop", "tables", "--db", db, "--format", "csv", *ITEMS],
        cwd=tmp_path,
        capture_output=True,  # bytes: a CR inside a quoted cell must arrive as it is
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.reader(io.StringIO(shown.stdout.decode("utf-8"), newline="")))
    assert rows[0] == ["item_name", "total_sold"]
    sold = {row[0]: int(row[1]) for row in rows[1:]}
    assert sold == {cell: i + 1 for i, cell in enumerate(names.values())}
    assert b"\x1b" not in shown.stdout and b"\x07" not in shown.stdout


def test_tables_limit_and_formats_for_scripts(tmp_path: Path) -> None:
    import csv
    import json

    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sample", "--db", db, cwd=tmp_path).returncode == 0
    limited = run("tables", "--db", db, "--limit", "2", cwd=tmp_path)
    assert "item_performance (11 rows, showing 2)" in limited.stdout
    as_json = json.loads(run("tables", "--db", db, "--format", "json", cwd=tmp_path).stdout)
    assert set(as_json) == {
        "receipts_summary",
        "store_monthly",
        "item_performance",
        "store_peak_hours",
    }
    items = {r["item_name"]: r["total_sold"] for r in as_json["item_performance"]}
    assert items["Latte"] == 8 and "Crème Brûlée" in items
    assert all(isinstance(r["sales"], str) for r in as_json["store_monthly"])  # exact decimals
    # csv: one table, as a spreadsheet opens it (its own header, no `table` column).
    text = run(
        "tables", "--db", db, "--format", "csv", "--table", "store_monthly", cwd=tmp_path
    ).stdout
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["month", "store_id", "sales"] and len(rows) > 3
    assert [r for r in rows[1:] if r[0] == "month"] == []  # one header line
    # One order, the API's: oldest month (then store) first; --limit takes the first rows.
    assert rows[1:] == sorted(rows[1:], key=lambda r: (r[0], int(r[1])))
    limited_csv = run(
        "tables",
        "--db",
        db,
        "--format",
        "csv",
        "--table",
        "store_monthly",
        "--limit",
        "2",
        cwd=tmp_path,
    ).stdout
    assert list(csv.reader(limited_csv.splitlines())) == rows[:3]
    summary = json.loads(
        run(
            "tables",
            "--db",
            db,
            "--format",
            "json",
            "--table",
            "receipts_summary",
            "--limit",
            "1",
            cwd=tmp_path,
        ).stdout
    )
    assert list(summary) == ["receipts_summary"]
    oldest = min(r["as_of"] for r in as_json["receipts_summary"])
    assert [r["as_of"] for r in summary["receipts_summary"]] == [oldest]


def test_tables_csv_of_several_tables_is_refused_in_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sample", "--db", db, cwd=tmp_path).returncode == 0
    refused = run("tables", "--db", db, "--format", "csv", cwd=tmp_path)
    assert_one_line_error(refused, "--format csv writes one table")
    assert "--table NAME" in refused.stderr and "store_peak_hours" in refused.stderr
    assert refused.stdout == ""
    two = ("--table", "store_monthly", "--table", "item_performance")
    assert_one_line_error(run("tables", "--db", db, "--format", "csv", *two, cwd=tmp_path), "")
    text = run("tables", "--db", db, *two, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "\nstore_monthly (" in text.stdout and "\nitem_performance (" in text.stdout
    assert "receipts_summary" not in text.stdout and "store_peak_hours" not in text.stdout
    unknown = run("tables", "--db", db, "--table", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "--table" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_generate_to_standard_output(tmp_path: Path) -> None:
    result = run("generate", "--count", "3", "--out", "-", "--seed", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3 and result.stdout.startswith('{"_id"')
    assert not (tmp_path / "-").exists()
    assert "wrote 3 line(s) to standard output" in result.stderr


def test_help_shows_flags_as_flags_and_the_batch_options_with_their_defaults(
    tmp_path: Path,
) -> None:
    shown = " ".join(run("sync", "--help", cwd=tmp_path).stdout.split())
    assert "<bool>" not in shown
    assert "[env: COFFEESHOP_BATCH_SIZE; default 5000]" in shown
    assert "[env: COFFEESHOP_BATCH_WAIT; default 0.2]" in shown
    assert " ." not in shown


def test_an_invalid_option_is_named_as_the_option(tmp_path: Path) -> None:
    write_lines(tmp_path / "r.jsonl", [receipt(1)])
    result = run("sync", "--source", "r.jsonl", "--batch-size", "0", cwd=tmp_path)
    assert_one_line_error(result, "bad configuration --batch-size:")
    assert "COFFEESHOP_BATCH_SIZE" not in result.stderr


def test_a_csv_source_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("Store_ID,transactionDate,total_price\n3,2026-11-20,12.5\n")
    for command in ("sync", "reconcile"):
        result = run(command, "--source", "r.csv", "--db", "sqlite:///a.db", cwd=tmp_path)
        assert_one_line_error(result, "looks like CSV")
        assert "the source is JSON lines" in result.stderr


def test_postgres_scheme_is_accepted_like_postgresql() -> None:
    from coffeeshop.store import normalize_url

    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u:p@h/db") == normalize_url("postgresql://u:p@h/db")


def test_hints_name_the_database_and_source_the_user_gave(tmp_path: Path) -> None:
    """Copying a printed hint must act on the same database (password masked)."""
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1), "garbage"])
    db = f"sqlite:///{tmp_path / 'hinted.db'}"
    result = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert f"(see `coffeeshop quarantine --db {db}`)" in result.stderr
    sample_db = f"sqlite:///{tmp_path / 'sample.db'}"  # a database holds one source
    sample = run("sample", "--db", sample_db, cwd=tmp_path)
    assert f"(see `coffeeshop quarantine --db {sample_db}`)" in sample.stdout
    source.write_text("")  # truncated under the checkpoint
    truncated = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
    assert f"`coffeeshop reconcile --repair --source {source} --db {db}`" in truncated.stderr


ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_takes_a_port_and_installs_only_the_runtime(tmp_path: Path) -> None:
    """`make demo PORT=8765` runs the demo on that port; the demo's set-up installs the
    package alone, the test tools only come with `make test` (dry runs in a copy of the
    Makefile's folder without a virtual environment)."""
    for name in ("Makefile", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())

    def dry(*targets: str) -> str:
        result = subprocess.run(
            ["make", "-n", *targets], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    demo = dry("demo", "PORT=8765")
    assert ".venv/bin/coffeeshop demo --port 8765" in demo
    assert "pip install --quiet -e ." in demo and "[dev]" not in demo
    assert "--port 8000" in dry("demo")
    test = dry("test")
    assert "pip install --quiet -e '.[dev]'" in test and ".venv/bin/pytest" in test


def test_make_clean_keeps_the_databases_and_clean_databases_names_what_it_removes(
    tmp_path: Path,
) -> None:
    """`make clean` removes what make built, never a database (it used to delete analysis.db
    silently); removing the databases is its own target, which names each file it removes."""
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    (tmp_path / ".venv").mkdir()
    for name in ("analysis.db", "analysis.db-wal", "analysis.db-signal", "sample.db"):
        (tmp_path / name).write_text("data")

    # As typed in a shell: under `make test` the parent's MAKEFLAGS/MAKELEVEL would make this
    # make print "Entering directory" lines (it did, in CI).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def make(target: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["make", target], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
        )
        assert result.returncode == 0, result.stderr
        return result

    make("clean")
    assert not (tmp_path / ".venv").exists()
    assert sorted(p.name for p in tmp_path.glob("*.db*")) == [
        "analysis.db",
        "analysis.db-signal",
        "analysis.db-wal",
        "sample.db",
    ]
    removed = make("clean-databases").stdout.splitlines()
    assert removed == [
        "removing analysis.db",
        "removing analysis.db-wal",
        "removing analysis.db-signal",
        "removing sample.db",
    ]
    assert not list(tmp_path.glob("*.db*"))


def test_a_port_in_use_says_which_option_changes_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("demo", "--port", str(port), "--dir", str(tmp_path / "d"), cwd=tmp_path)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")
    assert "--port N" in result.stderr and "make demo PORT=N" in result.stderr


def test_what_the_readme_commands_write_is_ignored_by_git() -> None:
    readme_files = ("receipts.jsonl", "demo/receipts.jsonl", "demo/analysis.db", "analysis.db")
    for path in (*readme_files, "sample.db"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"{path} is not in .gitignore"


def test_the_readme_shows_the_dashboard_near_the_top_and_says_which_variable_wins(
    tmp_path: Path,
) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/dashboard.png)" in "\n".join(readme.splitlines()[:15])
    assert (ROOT / "docs" / "dashboard.png").exists()
    assert "When both `COFFEESHOP_DB` and `SQL_DSN` are set, `COFFEESHOP_DB` wins" in readme
    write_lines(tmp_path / "r.jsonl", [receipt(1)])
    env = {"COFFEESHOP_DB": "sqlite:///cs.db", "SQL_DSN": "sqlite:///sql.db"}
    assert run("sync", "--source", "r.jsonl", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "cs.db").exists() and not (tmp_path / "sql.db").exists()


def test_generate_refuses_an_existing_file_unless_told_to_append_or_overwrite(
    tmp_path: Path,
) -> None:
    """Running the README's `generate` line twice must not double the file silently."""
    out = tmp_path / "receipts.jsonl"
    line = ("generate", "--count", "5", "--out", str(out), "--seed", "1")
    assert run(*line, cwd=tmp_path).returncode == 0
    first = out.read_bytes()
    assert len(first.splitlines()) == 5
    again = run(*line, cwd=tmp_path)
    assert_one_line_error(again, f"{out} already holds {len(first):,} bytes")
    assert "--append" in again.stderr and "--overwrite" in again.stderr
    assert out.read_bytes() == first  # untouched
    appended = run(*line, "--append", cwd=tmp_path)
    assert appended.returncode == 0, appended.stderr
    assert out.read_bytes() == first + first  # the same seed: the same receipts again
    replaced = run(*line, "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert f"replacing {out} ({2 * len(first):,} bytes)" in replaced.stderr
    assert out.read_bytes() == first
    both = run(*line, "--append", "--overwrite", cwd=tmp_path)
    assert_one_line_error(both, "--append and --overwrite exclude each other")
    out.write_bytes(b"")  # an empty file (as `touch` leaves it) is written without a word
    assert run(*line, cwd=tmp_path).returncode == 0 and out.read_bytes() == first
