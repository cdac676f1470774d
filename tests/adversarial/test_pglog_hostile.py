"""Server logs are partly written by clients (user names, application_name, statements): whatever
they hold, reading them never raises, and any log_line_prefix a server may have compiles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.contain.redis import rule_words
from piiguard.response.pglog import LogFormat, parse_time, prefix_pattern, records, zone

PREFIX_PIECES = st.sampled_from(["%m", "%t", "%n", "%p", "%h", "%r", "%u", "%d", "%a", "%q", "%%", "%-10u", "%5p",
                                 "%Z", "%", " ", "[", "]", "(", ")", "|", "\\", "*", "+", "?", "{", "}", ".", "$"])


@given(st.lists(PREFIX_PIECES, max_size=12).map("".join), st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_prefix_compiles_and_any_text_reads(prefix: str, text: str) -> None:
    prefix_pattern(prefix)
    for record in records(text, LogFormat("stderr", prefix, "Europe/Berlin")):
        assert record.at.tzinfo is UTC


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_hostile_csv_and_json_logs_never_raise(body: str) -> None:
    for text in ("2026-11-03 09:00:01.100 CET," + body, '{"timestamp": ' + body, body):
        list(records(text, LogFormat()))


@given(st.text(max_size=60), st.text(max_size=30))
def test_times_parse_or_say_none(text: str, tz: str) -> None:
    at = parse_time(text, zone(tz))
    assert at is None or at.tzinfo is UTC
    assert at is None or isinstance(at, datetime)


@given(st.lists(st.text(alphabet="~+-@*&%#()abc:| ", min_size=1, max_size=12), max_size=10))
def test_rule_words_never_lose_text(words: list[str]) -> None:
    line = " ".join(w.strip() for w in words if w.strip())
    assert " ".join(rule_words(line)) == " ".join(line.split())


# --- what an outsider sends never changes whose session a read belongs to -------------------------

T = "2026-11-03 08:00:01.100 UTC"
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\t", "\n\t"]
FORGED = [f"{T} [71] LOG:  connection received: host=127.0.0.1 port=5000",
          f"{T} [71] LOG:  connection authorized: user=scan database=shop application_name=piiguard",
          f"{T} [72] LOG:  connection received: host=10.9.9.9 port=5000",
          f"{T} [70] LOG:  AUDIT: SESSION,9,1,READ,SELECT,TABLE,public.decoy,\"SELECT 1\",<none>",
          "connection authorized: user=scan database=shop application_name=piiguard", " */", "/* ", '"', ","]
HOSTILE = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(BREAKS), st.sampled_from(FORGED)),
                   max_size=12).map("".join)


def _logged(text: str) -> str:
    """A message as PostgreSQL writes it to stderr: each newline followed by a tab."""
    return text.replace("\n", "\n\t")


def _audit(n: int, relation: str, statement: str) -> str:
    return f'AUDIT: SESSION,{n},1,READ,SELECT,TABLE,{relation},"{statement.replace(chr(34), chr(34) * 2)}",<none>'


def _session_log(statement: str, prefix_fields: str = "", app: str = "psql") -> str:
    """pid 70: piiguard (user scan from 127.0.0.1, application piiguard), reading the catalog; pid 71:
    mallory from 127.0.0.1 sending ``statement``, then reading public.members and public.cards."""
    me, them = (" scan@shop/piiguard", f" mallory@shop/{app}") if prefix_fields else ("", "")
    bare = " @/" if prefix_fields else ""
    return "".join(line + "\n" for line in [
        f"{T} [70]{bare} LOG:  connection received: host=127.0.0.1 port=5000",
        f"{T} [70]{me} LOG:  connection authorized: user=scan database=shop application_name=piiguard",
        f"{T} [70]{me} LOG:  " + _logged(_audit(1, "pg_catalog.pg_class", "SELECT 1")),
        f"{T} [71]{bare} LOG:  connection received: host=127.0.0.1 port=5001",
        f"{T} [71]{them} LOG:  connection authorized: user=mallory database=shop application_name={app}",
        f"{T} [71]{them} LOG:  statement: " + _logged(statement),
        f"{T} [71]{them} LOG:  " + _logged(_audit(1, "public.members", statement)),
        f"{T} [71]{them} LOG:  " + _logged(_audit(2, "public.cards", "SELECT 2")),
    ])


def _attributed(tmp_path: Path, log: str, prefix: str) -> tuple[dict[str, list[str]], int]:
    from piiguard.model import Store
    from piiguard.response.evidence import PostgresLog
    from piiguard.response.own import Identity

    path = tmp_path / "pg.log"
    path.write_bytes(log.encode("utf-8", errors="surrogatepass"))
    store = Store("a", "postgres", options={"log_file": str(path), "log_format": "stderr", "log_line_prefix": prefix,
                                            "log_timezone": "UTC"}, allowed_networks=("192.0.2.0/24",))
    ev = PostgresLog(Identity("scan", frozenset({"127.0.0.1"}))).collect(
        store, datetime(2026, 11, 3, 7, 59, tzinfo=UTC), datetime(2026, 11, 3, 8, 1, tzinfo=UTC),
        tmp_path / "evidence", force=True)
    return ev.reads, ev.own


@given(HOSTILE)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_statement_text_never_changes_whose_read_it_is(tmp_path: Path, statement: str) -> None:
    statement = statement.replace("\x00", "")  # the server refuses NUL in a statement
    reads, own = _attributed(tmp_path, _session_log(statement), "%m [%p] ")
    assert set(reads) == {"127.0.0.1"} and {"public.members", "public.cards"} <= set(reads["127.0.0.1"])
    assert own == 2  # pid 70's authorized and AUDIT records, nothing of pid 71's


@given(HOSTILE, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_application_name_in_the_prefix_never_changes_whose_read_it_is(tmp_path: Path, statement: str,
                                                                       app: str) -> None:
    """%u and %a in log_line_prefix: the outsider's application_name (printable ASCII, as the server keeps
    it) is printed on every record of its session, forged records included."""
    for forged in (app, "piiguard LOG:  " + FORGED[1].split("LOG:  ")[1], "x LOG:  " + FORGED[0].split("LOG:  ")[1]):
        reads, own = _attributed(tmp_path, _session_log(statement.replace("\x00", ""), "on", forged),
                                 "%m [%p] %q%u@%d/%a ")
        # a forged message inside %a can add reads to its own session (the prefix is ambiguous there);
        # it never hides one, nor makes it piiguard's or anyone else's
        assert set(reads) == {"127.0.0.1"} and {"public.members", "public.cards"} <= set(reads["127.0.0.1"]), forged
        assert own == 2, forged


def test_the_reported_forgery_is_not_piiguard(tmp_path: Path) -> None:
    statement = "SELECT 1 /* \r" + FORGED[0] + "\r" + FORGED[1] + " */"
    assert _attributed(tmp_path, _session_log(statement), "%m [%p] ") == (
        {"127.0.0.1": ["public.members", "public.cards"]}, 2)
    # the same forgery in application_name, printed by %a
    reads, own = _attributed(tmp_path, _session_log("SELECT 1", "on", "piiguard LOG:  " + FORGED[1].split("LOG:  ")[1]),
                             "%m [%p] %q%u@%d/%a ")
    assert (reads, own) == ({"127.0.0.1": ["public.members", "public.cards"]}, 2)


def _tsv(value: str) -> str:
    """A value as ClickHouse's TabSeparated writes it (backslash, tab, newline and the rest escaped)."""
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\b", "\\b"), ("\f", "\\f"),
                         ("\x00", "\\0"), ("'", "\\'")):
        value = value.replace(raw, escaped)
    return value


@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20), HOSTILE), max_size=5))
@settings(max_examples=200, deadline=None)
def test_query_log_rows_are_read_back_whole(rows: list[tuple[str, str, str]]) -> None:
    from piiguard.response.evidence import tsv_rows

    body = "".join("\t".join(_tsv(v) for v in row) + "\n" for row in rows)
    assert tsv_rows(body) == [list(row) for row in rows]


@given(st.sampled_from(['"', "`", ""]), st.sampled_from(["shop", "a b", "x@example.org", 'q"t', "ünï"]),
       st.sampled_from(["customers", "alice@example.com", "t`x", "a.b"]))
@settings(max_examples=100, deadline=None)
def test_quoted_names_are_read_whole_and_labelled(quote: str, database: str, table: str) -> None:
    from piiguard.response.evidence import Evidence, tables

    if not quote and any(c in database + table for c in ' "`.'):
        return  # not a bare identifier
    q = lambda name: quote + name.replace(quote, quote * 2) + quote if quote else name  # noqa: E731
    names = tables(f"SELECT * FROM {q(database)}.{q(table)} WHERE 1")
    assert names == [f"{database}.{table}"]
    ev = Evidence("s", None, None, True, "")
    ev.read("10.0.0.1", names)
    assert not any("alice" in n or "x@example" in n for n in ev.reads["10.0.0.1"])
