"""No credential shows, in any form: user:password@, ?password=, ?passwd=, other secret
options, a DSN without `://`, MongoDB URIs; in errors, logs, CLI output and /pipeline."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import _admin
from helpers import assert_one_line_error, receipt, run_coffeeshop, write_lines
from sqlalchemy.engine import make_url
from test_api_support import empty_database, fill, running

from coffeeshop.redact import mask_text, mask_url, secrets_of

SECRET = f"Pw{uuid.uuid4().hex[:10]}Zq"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("mysql+pymysql://u:SECRET@h:3306/db", "mysql+pymysql://u:***@h:3306/db"),
        ("mysql+pymysql://u@h/db?password=SECRET", "mysql+pymysql://u@h/db?password=***"),
        (
            "mysql://u@h/db?charset=utf8mb4&passwd=SECRET",
            "mysql://u@h/db?charset=utf8mb4&passwd=***",
        ),
        ("postgresql://u@h/db?sslpassword=SECRET;x=1", "postgresql://u@h/db?sslpassword=***;x=1"),
        ("u:SECRET@h:3306/db", "u:***@h:3306/db"),  # no scheme: not a URL, still masked
        ("mysql://u:SEC@RET@h/db", "mysql://u:***@h/db"),  # an unencoded @ in the password
        ("mysql://u:SEC?RET@h/db", "mysql://u:***@h/db"),
        ("host=h user=u password=SECRET dbname=d", "host=h user=u password=*** dbname=d"),
        (
            "mongodb://u:SECRET@a:1,b:2/?replicaSet=rs&authSource=admin",
            "mongodb://u:***@a:1,b:2/?replicaSet=rs&authSource=admin",
        ),
        (
            "mongodb+srv://u@c.example.net/?authMechanismProperties=AWS_SESSION_TOKEN:SECRET",
            "mongodb+srv://u@c.example.net/?authMechanismProperties=***",
        ),
        (
            "mongodb://h/?tlsCertificateKeyFilePassword=SECRET",
            "mongodb://h/?tlsCertificateKeyFilePassword=***",
        ),
        ("sqlite:///analysis.db", "sqlite:///analysis.db"),
        ("mysql+pymysql://root@127.0.0.1:3306/db", "mysql+pymysql://root@127.0.0.1:3306/db"),
    ],
)
def test_every_form_of_credential_is_masked(raw: str, shown: str) -> None:
    assert mask_url(raw) == shown
    assert "SECRET" not in mask_url(raw) and "SEC" not in mask_url(raw).replace("SECRET", "")
    assert mask_text(f"cannot use {raw}: refused") == f"cannot use {shown}: refused"


def test_a_parsed_url_and_its_secrets() -> None:
    url = make_url("mysql+pymysql://u:one@h/db?password=two&charset=utf8mb4")
    assert mask_url(url) == "mysql+pymysql://u:***@h/db?charset=utf8mb4&password=***"
    assert set(secrets_of(url)) == {"one", "two"}
    assert mask_text("driver said: two, one and more", "one", "two") == (
        "driver said: ***, *** and more"
    )


# -- the command, as a user runs it --------------------------------------------------------------


run = functools.partial(run_coffeeshop, log_level="DEBUG")


@pytest.mark.mariadb
def test_a_password_in_any_form_of_dsn_never_appears(tmp_path: Path, mysql_url: str) -> None:
    url = make_url(mysql_url)
    host, port, database = url.host, url.port or 3306, url.database
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    dsns = [
        f"mysql+pymysql://root@{host}:{port}/{database}?password={SECRET}",
        f"mysql+pymysql://root@{host}:{port}/{database}?passwd={SECRET}",
        f"mysql+pymysql://root:{SECRET}@{host}:{port}/{database}",
        f"root:{SECRET}@{host}:{port}/{database}",  # no scheme
    ]
    for dsn in dsns:
        for args in (
            ["sync", "--source", str(source)],
            ["tables"],
            ["quarantine"],
            ["reconcile", "--source", str(source)],
            ["reconcile", "--repair", "--source", str(source)],
            ["db", "upgrade"],
        ):
            result = run(*args, "--db", dsn, cwd=tmp_path)
            assert result.returncode == 2, (dsn, args, result.stderr)
            assert SECRET not in result.stdout + result.stderr, (dsn, args)
            assert "***" in result.stderr
            assert_one_line_error(result, "")


@pytest.mark.mariadb
def test_a_password_given_as_an_option_stays_out_of_the_cli_output(
    tmp_path: Path, reader: str
) -> None:
    """The password is right: everything works, and no output shows it."""
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    for args in (["tables"], ["quarantine"], ["reconcile", "--source", str(source)]):
        result = run(*args, "--db", reader, cwd=tmp_path)
        assert result.returncode in (0, 1), result.stderr
        assert SECRET not in result.stdout + result.stderr


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[str]:
    """The URL of a filled database for a SELECT-only user whose password is a query
    option (`?password=`), not in the user info."""
    with empty_database("mariadb", tmp_path) as admin_url:
        fill(admin_url, tmp_path)
        database = make_url(admin_url).database
        user = f"cs_pw_{uuid.uuid4().hex[:8]}"
        with _admin() as conn, conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, SECRET))
                cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@%s", (user, host))
        url = make_url(admin_url).set(username=user).update_query_dict({"password": SECRET})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with _admin() as conn, conn.cursor() as cur:
                for host in ("%", "localhost"):
                    cur.execute("DROP USER IF EXISTS %s@%s", (user, host))


@pytest.mark.mariadb
@pytest.mark.anyio
async def test_pipeline_and_logs_mask_a_password_option(
    reader: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(reader) as client:
        response = await client.get("/pipeline")
        assert response.status_code == 200, response.text
        assert response.json()["database"].endswith("password=***")
        seen = response.text
        for path in ("/ready", "/store_monthly", "/metrics", "/quarantine"):
            seen += (await client.get(path)).text
    assert SECRET not in seen
    assert SECRET not in caplog.text
