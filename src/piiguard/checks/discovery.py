"""What discovery reports about a store nobody registered.

The check is never run by ``piiguard check``: a configured store is registered by definition, so
:meth:`UnregisteredStore.applies` is False for every one of them. ``piiguard discover`` raises the
finding itself (:func:`piiguard.discovery.inventory.unregistered_finding`) for each store it finds at
an address no configured store resolves to; it is registered here so that ``piiguard show check
discovery.unregistered-store`` documents it, policies may name it (a waiver, a severity override) and
reports carry its title like any other check's.
"""

from __future__ import annotations

from piiguard.checks.base import Check, Outcome, Target, checks, not_applicable
from piiguard.model import Severity, Store, Vantage

CHECK_ID = "discovery.unregistered-store"


@checks.register(CHECK_ID)
class UnregisteredStore(Check[Target]):
    """A data store that no piiguard.yaml entry names.

    Risk: nobody scans it, checks it or watches it, and nobody knows whose customers it holds — in
    the motivating leak the exposed store was a copy an employee made, listed nowhere. Critical when
    an outside check got in without credentials (the finding's evidence names which one); medium
    when it asks for credentials, or is an engine piiguard only identifies.
    Fix: find its owner; remove it if it should not exist, else register it (`piiguard adopt
    ADDRESS --name NAME --write` adds its piiguard.yaml entry) so it is scanned, checked and watched.
    """

    engine = "*"
    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE

    @classmethod
    def applies(cls, store: Store) -> bool:
        return False  # a configured store is registered: only discover raises this finding

    def run(self, target: Target) -> Outcome:
        return not_applicable("raised by piiguard discover for stores no configuration names")


class _RaisedByWatch(Check[Target]):
    """Raised by watch's discovery, never run by ``piiguard check``."""

    engine = "*"
    vantage = Vantage.OUTSIDE

    @classmethod
    def applies(cls, store: Store) -> bool:
        return False

    def run(self, target: Target) -> Outcome:
        return not_applicable("raised by piiguard watch's discovery sweeps")


@checks.register("discovery.new-store")
class NewStore(_RaisedByWatch):
    """A store started listening in a watched network.

    Risk: a listener nobody announced — a copy being made, a test server left open — is how the
    motivating leak's second database appeared. watch's sweep (``discovery.every``) alerts within one
    interval with its address, engine and whether it is registered and open (critical when it is
    unregistered and open).
    Fix: find its owner; register it (`piiguard adopt`) or remove it.
    """

    severity = Severity.HIGH


@checks.register("discovery.canary-used")
class CanaryUsed(_RaisedByWatch):
    """A planted canary customer's token, link or e-mail was used.

    Risk: canary values exist only in the table they were planted in and its copies; someone using one
    holds a copy of that table — proof of access with time and source address, even for stores that
    keep no audit trail. Each hit is on the trap's incident timeline.
    Fix: treat it as a breach of the canary's table: scope the incident, find the copy (`piiguard
    discover`, `piiguard fingerprint match`), close it and respond.
    """

    severity = Severity.CRITICAL
