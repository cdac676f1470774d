"""PostgreSQL log records in every shape a server writes them: prefixes with and without a time zone
name, %q, padding, %r/%h, epoch times; csvlog and jsonlog; times in the server's log_timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from piiguard.model import Store
from piiguard.response.evidence import PostgresLog
from piiguard.response.pglog import LogFormat, parse_time, prefix_pattern, records, zone

AT = datetime(2026, 11, 3, 8, 0, 1, 100000, tzinfo=UTC)


@pytest.mark.parametrize(("prefix", "line", "pid", "host"), [
    ("%m [%p] ", "2026-11-03 08:00:01.100 UTC [101] LOG:  hello", "101", None),
    ("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
     "2026-11-03 08:00:01 UTC [7]: [3-1] user=bob,db=shop,app=psql,client=198.51.100.7 LOG:  hello", "7",
     "198.51.100.7"),
    ("%m %r %p %q%u@%d ", "2026-11-03 08:00:01.100 UTC 10.1.2.3(5432) 55 ann@prod LOG:  hello", "55", "10.1.2.3"),
    ("%m %r %p %q%u@%d ", "2026-11-03 08:00:01.100 UTC  60 LOG:  checkpoint starting", "60", None),  # no session
    ("%n|%-8p|%h|", "1793692801.100|42      |::1|LOG:  hello", "42", "::1"),
    ("%%%m%% <%p> ", "%2026-11-03 08:00:01.100 UTC% <9> WARNING:  hello", "9", None),
], ids=["default", "pgbadger-style", "remote-and-q", "q-without-session", "epoch-padded", "literal-percent"])
def test_prefixes(prefix: str, line: str, pid: str, host: str | None) -> None:
    assert prefix_pattern(prefix).match(line) is not None
    (record,) = records(line + "\n", LogFormat("stderr", prefix, "UTC"))
    assert (record.pid, record.host, record.at.replace(microsecond=0)) == (pid, host, AT.replace(microsecond=0))


@pytest.mark.parametrize(("text", "tz", "expected"), [
    ("2026-11-03 09:00:01.100 CET", "Europe/Berlin", AT),
    ("2026-07-03 10:00:01.100 CEST", "Europe/Berlin", datetime(2026, 7, 3, 8, 0, 1, 100000, tzinfo=UTC)),
    ("2026-11-03 11:00:01.100 +03", "UTC", AT),
    ("2026-11-03 08:00:01.100 GMT", "Europe/Berlin", AT),
    ("not a time", "UTC", None),
])
def test_times_follow_log_timezone(text: str, tz: str, expected: datetime | None) -> None:
    assert parse_time(text, zone(tz)) == expected


CSV = ('2026-11-03 09:00:01.100 CET,"bob","shop",102,"198.51.100.7:40000",6565a1.66,1,"SELECT",'
       '2026-11-03 09:00:00 CET,3/4,0,LOG,00000,"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,""SELECT 1"",'
       '<not logged>",,,,,,,,,"psql","client backend",,0\n')
JSON = ('{"timestamp":"2026-11-03 09:00:01.100 CET","user":"bob","dbname":"shop","pid":102,'
        '"remote_host":"198.51.100.7","remote_port":40000,"error_severity":"LOG","state_code":"00000",'
        '"message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\\"SELECT 1\\",<not logged>"}\n')


@pytest.mark.parametrize("text", [CSV, JSON], ids=["csvlog", "jsonlog"])
def test_csvlog_and_jsonlog_give_address_and_reads(tmp_path: Path, text: str) -> None:
    log = tmp_path / "pg.log"
    log.write_text(text)
    store = Store("a", "postgres", options={"log_file": str(log), "log_format": "stderr", "log_line_prefix": "%m ",
                                            "log_timezone": "Europe/Berlin"}, allowed_networks=("10.0.0.0/8",))
    ev = PostgresLog().collect(store, datetime(2026, 11, 3, 7, 59, tzinfo=UTC), datetime(2026, 11, 3, 8, 1, tzinfo=UTC),
                               tmp_path / "evidence")
    assert ev.addresses == {"198.51.100.7": "unknown"}
    assert ev.reads == {"198.51.100.7": ["public.customers"]}
    assert "the store's options" in ev.note


@pytest.mark.parametrize(("fmt", "text", "user", "application"), [
    (LogFormat("stderr", "%m [%p] %q%u@%d/%a "), "2026-11-03 08:00:01.100 UTC [7] bob@shop/psql LOG:  hello\n",
     "bob", "psql"),
    (LogFormat("stderr", "%m [%p] %q%u@%d/%a "), "2026-11-03 08:00:01.100 UTC [7] bob@shop/ LOG:  hello\n", "bob", ""),
    (LogFormat("stderr", "%m [%p] "), "2026-11-03 08:00:01.100 UTC [7] LOG:  hello\n", None, None),
    (LogFormat("csvlog"), CSV, "bob", "psql"),
    (LogFormat("jsonlog"), JSON, "bob", None),  # this record carries no application_name
], ids=["prefix-u-a", "prefix-empty-a", "prefix-without", "csvlog", "jsonlog"])
def test_records_name_the_user_and_application(fmt: LogFormat, text: str, user: str | None,
                                               application: str | None) -> None:
    (record,) = records(text, fmt)
    assert (record.user, record.application) == (user, application)


SESSIONS = (  # log_connections on, the default prefix: who a session is comes from its authorized line
    "2026-11-03 08:00:01.100 UTC [70] LOG:  connection received: host=127.0.0.1 port=5000\n"
    "2026-11-03 08:00:01.100 UTC [70] LOG:  connection authorized: user=scan database=shop application_name=piiguard\n"
    "2026-11-03 08:00:01.100 UTC [70] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,pg_catalog.pg_class,\"SELECT 1\",<none>\n"
    "2026-11-03 08:00:01.100 UTC [71] LOG:  connection received: host=127.0.0.1 port=5001\n"
    "2026-11-03 08:00:01.100 UTC [71] LOG:  connection authorized: user=scan database=shop application_name=psql\n"
    "2026-11-03 08:00:01.100 UTC [71] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.members,\"SELECT 1\",<none>\n"
    "2026-11-03 08:00:01.100 UTC [70] LOG:  connection received: host=10.9.9.9 port=5002\n"
    "2026-11-03 08:00:01.100 UTC [70] LOG:  connection authorized: user=scan database=shop application_name=piiguard\n"
    "2026-11-03 08:00:01.100 UTC [70] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.cards,\"SELECT 1\",<none>\n"
)


def test_only_piiguards_user_address_and_application_are_left_out(tmp_path: Path) -> None:
    """pid 70 first is piiguard (user scan from 127.0.0.1, application piiguard); pid 71 is piiguard's user
    on piiguard's host with psql; pid 70 reused from 10.9.9.9 with piiguard's user and name is not piiguard."""
    from piiguard.response.own import Identity

    log = tmp_path / "pg.log"
    log.write_text(SESSIONS)
    store = Store("a", "postgres", options={"log_file": str(log), "log_format": "stderr", "log_line_prefix": "%m [%p] ",
                                            "log_timezone": "UTC"}, allowed_networks=("192.0.2.0/24",))
    window = datetime(2026, 11, 3, 7, 59, tzinfo=UTC), datetime(2026, 11, 3, 8, 1, tzinfo=UTC)
    who = Identity("scan", frozenset({"127.0.0.1"}))
    ev = PostgresLog(who).collect(store, *window, tmp_path / "evidence")
    assert ev.reads == {"127.0.0.1": ["public.members"], "10.9.9.9": ["public.cards"]}
    assert ev.own == 2  # pid 70's authorized and AUDIT lines
    everything = PostgresLog(who, include_own=True).collect(store, *window, tmp_path / "evidence", force=True)
    assert everything.reads["127.0.0.1"] == ["pg_catalog.pg_class", "public.members"] and everything.own == 2


def test_records_end_at_newline_only_and_continue_on_a_tab() -> None:
    """The server ends a record at \\n and writes a message's own newlines as \\n\\t; every other line
    break str.splitlines knows is part of the text."""
    text = ("2026-11-03 08:00:01.100 UTC [7] LOG:  statement: SELECT 1\r2026-11-03 08:00:01.100 UTC [8] LOG:  x"
            "\u2028y\x85z\n\tFROM t\n2026-11-03 08:00:01.100 UTC [9] LOG:  next\r\n")
    first, second = records(text, LogFormat())
    assert (first.pid, second.pid, second.message) == ("7", "9", "next")
    assert first.message.endswith("x\u2028y\x85z\nFROM t") and first.raw.count("\n") == 1


def test_mariadb_audit_times_follow_log_timezone_and_lines_end_at_newline(tmp_path: Path) -> None:
    """server_audit writes the server's local time; a query's U+2028 or \\r is no line end."""
    from piiguard.response.evidence import MariaDBAudit

    log = tmp_path / "audit.log"
    log.write_bytes(("20261103 03:00:01,db,mallory,10.9.9.9,7,8,QUERY,app,'SELECT 1 /*\u2028\r*/ FROM `app`.`cards`',0\n"
                     ).encode())
    store = Store("m", "mysql", options={"log_file": str(log), "log_timezone": "America/New_York"})
    ev = MariaDBAudit().collect(store, datetime(2026, 11, 3, 8, 0, tzinfo=UTC), datetime(2026, 11, 3, 8, 1, tzinfo=UTC),
                                tmp_path / "evidence")
    assert ev.reads == {"10.9.9.9": ["app.cards"]} and "log_timezone America/New_York" in ev.note


@pytest.mark.parametrize(("message", "expected"), [
    ("connection authorized: user=scan database=shop application_name=piiguard", ("scan", "piiguard")),
    ("connection authorized: user=scan database=shop application_name=psql SSL enabled (protocol=TLSv1.3, "
     "cipher=TLS_AES_256_GCM_SHA384, bits=256)", ("scan", "psql")),
    ("connection authorized: user=scan database=shop GSS (authenticated=yes, encrypted=yes, principal=s@R)",
     ("scan", None)),
    ("replication connection authorized: user=rep application_name=walreceiver", ("rep", "walreceiver")),
    ("connection authorized: user=scan database=shop application_name=piiguard LOG:  statement: SELECT 1", None),
    ("connection authorized: user=scan database=shop application_name=my app", None),
])
def test_only_whole_connection_messages_name_a_session(message: str, expected: tuple[str, str | None] | None) -> None:
    from piiguard.response.pglog import authorized

    assert authorized(message) == expected


PADDING = "x" * 140_000  # past the csv module's default field limit (128 KiB)


@pytest.mark.parametrize("text", [CSV, JSON], ids=["csvlog", "jsonlog"])
def test_a_statement_padded_past_the_csv_field_limit_still_names_its_read(tmp_path: Path, text: str) -> None:
    """A client padding its statement must not drop its own read, or the record after it, from evidence."""
    log = tmp_path / "pg.log"
    log.write_text(text.replace("SELECT 1", f"SELECT 1 /*{PADDING}*/") + text.replace("public.customers", "public.orders"))
    store = Store("a", "postgres", options={"log_file": str(log), "log_format": "stderr", "log_line_prefix": "%m ",
                                            "log_timezone": "Europe/Berlin"}, allowed_networks=("10.0.0.0/8",))
    ev = PostgresLog().collect(store, datetime(2026, 11, 3, 7, 59, tzinfo=UTC), datetime(2026, 11, 3, 8, 1, tzinfo=UTC),
                               tmp_path / "evidence")
    assert ev.reads == {"198.51.100.7": ["public.customers", "public.orders"]}


@pytest.mark.parametrize(("statement", "named"), [
    ("SELECT * FROM s1, s2", {"s1", "s2"}),
    ("WITH a AS (SELECT 1) SELECT * FROM a, secrets", {"secrets"}),
    ("SELECT 1 FROM/**/secrets", {"secrets"}),
    ("SELECT * FROM(secrets)", {"secrets"}),
    ("SELECT * FROM remote('h', db.t)", {"db.t"}),
    ("SELECT * FROM t1 t, t2 AS u JOIN t3 ON 1", {"t1", "t2", "t3"}),
    ('SELECT * FROM "db"."t" x, `d`.`u`', {"db.t", "d.u"}),
], ids=["comma-list", "cte", "comment-glued", "parenthesised", "table-function", "aliases", "quoted"])
def test_every_table_a_statement_reads_is_named(statement: str, named: set[str]) -> None:
    """An outsider's statement shaped to hide a table (a comma list, a comment, parentheses, a table
    function) still names it: evidence lists too many reads rather than hide one."""
    from piiguard.response.evidence import tables

    assert named <= set(tables(statement))
