"""Time bounds against hostile peers: every URL scheme × command × misbehaving peer ends within
2 × the timeout + 3 s, and answers with piiguard's own error (or error findings / scan problems),
never a driver's exception, a hang or a pass.

The peers (tests/adversarial/peers.py) are sockets on 127.0.0.1: silent after accepting, garbage,
an endless stream, an immediate hang-up, one byte a second — in plain text, and after a completed
TLS handshake for the engines' TLS variants. Each case prints its elapsed time
(``pytest -s`` shows them; bench/hostile_peers.py prints the table of worst times).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers import BEHAVIOURS, COMMANDS, SCHEMES, TLS_BEHAVIOURS, TLS_SCHEMES, hostile, run_command

from piiguard import plugins
from piiguard.errors import PiiguardError
from piiguard.model import Finding, ScanResult, Status

TIMEOUT = 1.5  # above the drip interval (1 s): only an overall deadline stops a drip, not a read timeout
BOUND = 2 * TIMEOUT + 3


@pytest.fixture(scope="module", autouse=True)
def _loaded() -> None:
    plugins.load()  # imports before any clock starts


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_command_against_hostile_peer_ends_in_time_with_a_clear_answer(
        scheme: str, command: str, behaviour: str, tmp_path: Path) -> None:
    _case(scheme, command, behaviour, tmp_path)


@pytest.mark.parametrize("behaviour", list(TLS_BEHAVIOURS))
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("scheme", list(TLS_SCHEMES))
def test_command_against_hostile_peer_behind_tls_ends_in_time(
        scheme: str, command: str, behaviour: str, tmp_path: Path) -> None:
    """The peer completes a TLS handshake, then misbehaves: the deadline must reach a socket that the
    driver has wrapped in TLS (ssl detaches the object the deadline saw connect)."""
    _case(scheme, command, behaviour, tmp_path)


def _case(scheme: str, command: str, behaviour: str, tmp_path: Path) -> None:
    with hostile(behaviour, scheme) as store:
        start = time.monotonic()
        try:
            result: object = run_command(command, store, TIMEOUT, str(tmp_path))
        except PiiguardError as exc:
            result = exc
        elapsed = time.monotonic() - start
    print(f"\n{scheme} {command} {behaviour}: {elapsed:.2f} s -> {type(result).__name__}")
    assert elapsed <= BOUND, f"{scheme} {command} against a {behaviour} peer took {elapsed:.1f} s"
    if isinstance(result, list) and result and isinstance(result[0], Finding):  # check
        decided = {f.check: f for f in result if f.status is not Status.ERROR}
        if scheme == "clickhouse-native":
            # the HTTP port refused the empty password and the hostile native port is evidence, not a
            # reason to leave the door undecided (clickhouse.default-no-password decides per port)
            door = decided.pop("clickhouse.default-no-password")
            assert door.status is Status.PASS and "could not be reached" in door.evidence, door
        assert decided == {}, [(f.check, f.status) for f in result]
        assert all(f.evidence for f in result)
    elif isinstance(result, ScanResult):
        assert result.problems and not any(s.collections for s in result.stores)
    elif command == "evidence" and not isinstance(result, PiiguardError):
        assert not result.trail, result  # type: ignore[attr-defined]  # no collector, or none read: says so
    else:
        assert isinstance(result, PiiguardError), f"{command} returned {result!r} from a hostile peer"
        assert "not-a-real-secret" not in str(result)
