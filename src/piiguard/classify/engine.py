"""The column engine: detectors → one decision per field, with a confidence.

Per batch and field, the work is vectorised and runs on the batch's *distinct* values, each weighted
by how often it occurs (``value_counts``), so a status column costs as little as its vocabulary:

1. The distinct values are laid end to end, one per line, and scanned **once** by a Hyperscan
   database holding every detector's pattern anchored to a line (``^…$``, multiline). That tells which
   detectors can match any whole value at all — most cannot, and cost nothing further.
2. For each detector that can, Arrow's RE2 kernel (``match_substring_regex``) marks the matching
   values, and the validator (Python) checks them: every one of the first :data:`VALIDATE_ALL`
   distinct values of a field, then a random sample of :data:`VALIDATE_SAMPLE` rows per batch whose
   accepted share is applied to the batch (the field's reason then says the count is estimated).
3. Prose fields are scanned by a second, unanchored database for PII embedded in text, with the same
   budget.

Fields of a batch are observed in parallel threads (Arrow kernels and Hyperscan release the GIL).
Counts add up across batches; :meth:`Classifier.decide` weighs the share of valid values against
the detector's ``min_share``, its column rule, and field-name context. Nothing here keeps a value
beyond the batch, except up to :data:`RULE_VALUES` distinct matched values per detector held in
memory for column rules — never written anywhere.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_cache_dir

from piiguard.classify import native
from piiguard.classify.column_model import ColumnModel
from piiguard.classify.detectors import THING_WORDS, ColumnStats, Detector, name_tokens
from piiguard.classify.native import Countries, Numbers
from piiguard.classify.profile import Profile
from piiguard.classify.types import NativeType
from piiguard.errors import PluginError
from piiguard.model import Classification, Evidence
from piiguard.registry import driver

if TYPE_CHECKING:
    import hyperscan
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # imported on first use: starting the CLI must not load every engine's driver
    hyperscan = driver("hyperscan")
    np = driver("numpy")
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

RULE_VALUES = 500
VALIDATE_ALL = 2048
VALIDATE_SAMPLE = 256
STATS_VALUES = 20_000  # values per field used for distinct ratio and shape (the first ones seen)
# Values are cut to this many characters before matching: a 100 MB value costs as much as a note, and the
# types a classifier decides (names, numbers, addresses, texts carrying PII) show within the first ones.
MAX_VALUE_CHARS = 10_000
FREE_TEXT = "free-text-pii"
CUSTOMER_ID = "customer-identifier"
ID_SHAPE = (r"^(?:\d{1,20}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
            r"|[A-Za-z]{2,8}[_-][A-Za-z0-9]{4,32})$")
_LONG_REPEAT = re.compile(r"\{(\d+),(?:\d{3,}|[2-9]\d|1[6-9])\}")
_EDGE_L, _EDGE_R = r"(?:^|[^\w@.+/=-])", r"(?:$|[^\w@/=-])"


def _compiled_database(exprs: list[bytes], flags: list[int]) -> hyperscan.Database:
    """Compile (about a second for the built-ins) or load the same database from the user's cache."""
    db = hyperscan.Database()
    if not exprs:
        return db
    key = hashlib.sha256(repr((exprs, flags, getattr(hyperscan, '__version__', ''))).encode()).hexdigest()[:32]
    cached = Path(user_cache_dir("piiguard")) / f"hyperscan-{key}.db"
    try:
        loaded = hyperscan.loadb(cached.read_bytes(), hyperscan.HS_MODE_BLOCK)
        loaded.scratch = hyperscan.Scratch(loaded)  # a deserialised database comes without scratch space
        return loaded
    except (OSError, hyperscan.error):
        pass
    try:
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    except hyperscan.error as exc:
        raise PluginError(f"a detector pattern cannot be compiled by Hyperscan ({exc})",
                          hint="check custom detectors in piiguard.yaml") from exc
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(hyperscan.dumpb(db))
        tmp.replace(cached)
    except OSError:
        pass  # a read-only home: compile every time
    return db


def pattern_problem(pattern: str) -> str | None:
    """Why a detector pattern cannot be used by both engines (RE2 and Hyperscan), or None."""
    try:
        pc.match_substring_regex(pa.array([""]), f"^(?:{pattern})$")  # RE2 compiles lazily: give it a value
    except pa.ArrowInvalid:
        return "not valid RE2 syntax (no back-references or look-around; repetition counts up to 1000)"
    loose = _LONG_REPEAT.sub(lambda m: "{" + m.group(1) + ",}", pattern)
    try:
        hyperscan.Database().compile(expressions=[f"^(?:{loose})$".encode()], ids=[0], elements=1,
                                     flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_MULTILINE])
    except hyperscan.error as exc:
        return f"not supported by Hyperscan ({exc})"
    return None


def _sample_rows(weights: pa.Array, k: int, rng: random.Random) -> tuple[pa.Array, pa.Array]:
    """Draw ``k`` rows at random (with replacement) from distinct values weighted by their counts.

    Returns the indices of the distinct values drawn and how many times each was drawn — a sample of
    rows, so shares estimated from it are unbiased even when validity depends on frequency.
    """
    cumulative = np.cumsum(weights.to_numpy(zero_copy_only=False))
    rows = np.random.default_rng(rng.getrandbits(64)).integers(0, cumulative[-1], size=k)
    picked, times = np.unique(np.searchsorted(cumulative, rows, side="right"), return_counts=True)
    return pa.array(picked), pa.array(times)


def _weighted(weights: pa.Array | None, values: pa.Array) -> int:
    """Σ values × weights (booleans count as 0/1); without weights, Σ values."""
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int64())
    total = pc.sum(values if weights is None else pc.multiply(values, weights)).as_py()
    return int(total or 0)


@dataclass(frozen=True)
class Candidate:
    """One type a field might be, with the confidence one source of evidence gives it.

    ``decided_by`` names the source as :class:`piiguard.model.Evidence` does (``detector``,
    ``native-type``, ``model``); ``why`` is the reason in words (shares and name words, never values)."""

    pii_type: str
    confidence: float
    decided_by: str
    share: float | None = None
    context: tuple[str, ...] = ()
    why: str = ""
    priority: int = 50
    detector: str | None = None


@dataclass
class _Compiled:
    detector: Detector
    full: str  # RE2, anchored: pattern
    full_ctx: str | None  # RE2, anchored: pattern | context_pattern
    embedded: str | None  # RE2, unanchored with a named group


@dataclass
class FieldState:
    """Running counts for one field. Holds no value past the batch but the few a column rule needs."""

    name: str
    tokens: tuple[str, ...]
    non_null: int = 0
    nulls: int = 0
    stats_seen: int = 0
    stats_distinct: int = 0
    length_sum: int = 0
    spaced: int = 0
    valid: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)  # values validated so far, per detector
    rule_values: dict[str, set[str]] = field(default_factory=dict)
    embedded_rows: int = 0
    estimated: bool = False  # some valid counts were extrapolated from validating a sample of values
    rng: random.Random = field(default_factory=random.Random)
    id_shaped: int = 0  # among the first values seen (the shape statistics)
    notes: list[str] = field(default_factory=list)
    native: NativeType | None = None  # the engine's own type, when the connector reports one
    profile: Profile = field(default_factory=lambda: Profile())  # per-column features (the learned model's input)
    numbers: Numbers = field(default_factory=Numbers)  # range and decimals (group rules, years)
    countries: Countries = field(default_factory=Countries)  # values naming a country (group rules)
    cut: int = 0  # values longer than MAX_VALUE_CHARS, cut before matching

    def stats(self, detector: str) -> ColumnStats:
        seen = max(1, self.stats_seen)
        return ColumnStats(self.name, self.tokens, self.non_null, self.stats_distinct,
                           self.stats_distinct / seen, self.length_sum / max(1, self.non_null),
                           self.spaced / max(1, self.non_null),
                           sorted(self.rule_values.get(detector, ())))

    @property
    def prose(self) -> bool:
        n = max(1, self.non_null)
        return self.spaced / n >= 0.5 and self.length_sum / n >= 15


class Classifier:
    """Compiled detectors. Build once per scan; :meth:`observe` per batch; :meth:`decide` at the end."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = list(detectors)
        self.model = ColumnModel.load()
        self._local = threading.local()  # Hyperscan scratch space is per thread
        self._compiled = [self._compile(d) for d in self.detectors]
        self._by_name = {c.detector.name: c for c in self._compiled}
        self._anchored, self._anchored_ids = self._hyperscan(
            [(c.detector.name, c.detector.prefilter or c.detector.pattern, c.detector.ignore_case)
             for c in self._compiled]
            + [(c.detector.name, c.detector.context_pattern, c.detector.ignore_case) for c in self._compiled],
            anchored=True)
        self._embedded, self._embedded_ids = self._hyperscan(
            [(c.detector.name, c.detector.in_text, c.detector.ignore_case)
             for c in self._compiled if c.embedded], anchored=False)

    @staticmethod
    def _compile(d: Detector) -> _Compiled:
        flags = "(?i)" if d.ignore_case else ""
        full = f"{flags}^(?:{d.pattern})$" if d.pattern else "^$a"  # never matches
        alts = "|".join(p for p in (d.pattern, d.context_pattern) if p)
        full_ctx = f"{flags}^(?:{alts})$" if d.context_pattern else None
        embedded = f"{flags}{_EDGE_L}(?P<m>{d.in_text}){_EDGE_R}" if d.embedded and d.in_text else None
        probe = pa.array([""])  # RE2 compiles lazily: an empty array would not check the pattern
        try:  # RE2 rejects some constructs Python accepts: say which detector, now rather than mid-scan
            for regex in (full, full_ctx):
                if regex:
                    pc.match_substring_regex(probe, regex)
            if embedded:
                pc.extract_regex(probe, embedded)
        except pa.ArrowInvalid as exc:
            raise PluginError(f"detector {d.name!r}: its pattern is not valid RE2 syntax",
                              hint="no back-references or look-around; repetition counts up to 1000") from exc
        return _Compiled(d, full, full_ctx, embedded)

    @staticmethod
    def _hyperscan(
        items: list[tuple[str, str | None, bool]], *, anchored: bool
    ) -> tuple[hyperscan.Database, list[str]]:
        exprs: list[bytes] = []
        flags: list[int] = []
        names: list[str] = []
        for name, pattern, caseless in items:
            if not pattern:
                continue
            # Long bounded repeats make Hyperscan compile slowly; the prefilter may over-match (RE2 confirms).
            loose = _LONG_REPEAT.sub(lambda m: "{" + m.group(1) + ",}", pattern)
            expr = f"^(?:{loose})$" if anchored else loose
            flag = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
            if anchored:
                flag |= hyperscan.HS_FLAG_MULTILINE
            if caseless:
                flag |= hyperscan.HS_FLAG_CASELESS
            exprs.append(expr.encode())
            flags.append(flag)
            names.append(name)
        return _compiled_database(exprs, flags), names

    def _present(self, db: hyperscan.Database, names: list[str], data: bytes) -> set[str]:
        hits: set[str] = set()
        if not names:
            return hits

        def on_match(id_: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            hits.add(names[id_])

        scratches = self._local.__dict__.setdefault("scratch", {})
        scratch = scratches.get(id(db))
        if scratch is None:
            scratch = scratches[id(db)] = hyperscan.Scratch(db)
        db.scan(data, match_event_handler=on_match, scratch=scratch)
        return hits

    def new_state(self, name: str) -> FieldState:
        # Which values get validated must not depend on the run: seed by field name.
        return FieldState(name, name_tokens(name), rng=random.Random(zlib.crc32(name.encode())))

    def observe(self, state: FieldState, values: pa.Array, native: NativeType | None = None) -> None:
        """Add one batch of one field's values (strings, nulls allowed) to its counts; ``native`` is the
        field's type as the engine reports it (the values already rendered canonically for it).

        The work runs on the batch's *distinct* values, each weighted by how often it occurs, so a status
        column costs as little as its vocabulary. Thread-safe for different fields: it touches only
        ``state``, and Arrow kernels and Hyperscan scans release the GIL, so fields run in parallel.
        """
        if native is not None and state.native is None:
            state.native = native
        total = len(values)
        long = pc.greater(pc.binary_length(values), MAX_VALUE_CHARS)
        if pc.any(long).as_py():  # cut before anything copies the values
            state.cut += _weighted(None, long)
            values = pc.if_else(long, pc.utf8_slice_codeunits(values, 0, MAX_VALUE_CHARS), values)
        values = pc.utf8_trim_whitespace(values)
        values = values.filter(pc.greater(pc.utf8_length(values), 0))
        n = len(values)
        state.nulls += total - n
        if n == 0:
            return
        state.non_null += n
        if state.stats_seen == 0:  # shape statistics come from the first values seen
            head = values.slice(0, STATS_VALUES)
            state.stats_seen = len(head)
            state.stats_distinct = int(pc.count_distinct(head).as_py())
            state.id_shaped = _weighted(None, pc.match_substring_regex(head, ID_SHAPE))
        counts = pc.value_counts(values)
        uniques, weights = counts.field("values"), counts.field("counts")
        state.profile.update(uniques, weights)
        state.numbers.update(uniques, weights, state.native)
        state.countries.update(uniques, weights)
        state.length_sum += _weighted(weights, pc.utf8_length(uniques))
        state.spaced += _weighted(weights, pc.match_substring(uniques, " "))
        data = pc.binary_join_element_wise(uniques, "", "\n").buffers()[2].to_pybytes()
        for name in sorted(self._present(self._anchored, self._anchored_ids, data)):  # sorted: a set's order
            # varies between runs, and the order decides which random rows each validator is given
            comp = self._by_name[name]
            d = comp.detector
            pattern = comp.full_ctx if comp.full_ctx and d.context_hit(state.tokens) else comp.full
            mask = pc.match_substring_regex(uniques, pattern)
            matched = uniques.filter(mask)
            if len(matched) == 0:
                continue
            count, estimated = self._validated(state, d, matched, weights.filter(mask))
            state.valid[name] = state.valid.get(name, 0) + count
            state.estimated |= estimated
        if state.prose:
            self._observe_embedded(state, uniques, weights, data)

    def _validated(self, state: FieldState, d: Detector, matched: pa.Array, weights: pa.Array) -> tuple[int, bool]:
        """How many values (distinct ones weighted by occurrence) the validator accepts, and whether that
        count is an estimate.

        The first :data:`VALIDATE_ALL` distinct matched values of a field are validated and counted
        exactly. Past that budget, :data:`VALIDATE_SAMPLE` matched rows per batch, drawn at random, are
        validated and their accepted share applied to the batch: validators run in Python, patterns
        do not.
        """
        total = _weighted(None, weights)
        keep = state.rule_values.setdefault(d.name, set())
        if d.validate is None:
            if len(keep) < RULE_VALUES:
                keep.update(matched.slice(0, RULE_VALUES).to_pylist())
            return total, False
        budget = max(VALIDATE_SAMPLE, VALIDATE_ALL - state.checked.get(d.name, 0))
        estimated = len(matched) > budget
        if estimated:
            picks, times = _sample_rows(weights, budget, state.rng)
            matched, weights = matched.take(picks), times
        state.checked[d.name] = state.checked.get(d.name, 0) + len(matched)
        ok = seen = 0
        for value, c in zip(matched.to_pylist(), weights.to_pylist(), strict=True):
            seen += c
            if d.validate(value):
                ok += c
                if len(keep) < RULE_VALUES:
                    keep.add(value)
        return (round(ok * total / seen) if estimated else ok), estimated

    def _observe_embedded(self, state: FieldState, uniques: pa.Array, weights: pa.Array, data: bytes) -> None:
        """Count texts carrying PII. Past the first :data:`VALIDATE_ALL` distinct texts of a field,
        :data:`VALIDATE_SAMPLE` rows per batch drawn at random stand for the batch (the count is scaled)."""
        budget = max(VALIDATE_SAMPLE, VALIDATE_ALL - state.checked.get(FREE_TEXT, 0))
        scale = 1.0
        if len(uniques) > budget:
            total = _weighted(None, weights)
            picks, times = _sample_rows(weights, budget, state.rng)
            uniques, weights = uniques.take(picks), times
            scale = total / budget
            data = pc.binary_join_element_wise(uniques, "", "\n").buffers()[2].to_pybytes()
            state.estimated = True
        state.checked[FREE_TEXT] = state.checked.get(FREE_TEXT, 0) + len(uniques)
        present = self._present(self._embedded, self._embedded_ids, data)
        if not present:
            return
        carrying = pa.array([False] * len(uniques))
        for name in sorted(present):
            comp = self._by_name[name]
            assert comp.embedded is not None
            extracted = pc.extract_regex(uniques, comp.embedded).field("m")
            found = extracted.filter(pc.is_valid(extracted))
            if len(found) == 0:
                continue
            validate = comp.detector.validate
            good = [s for s in pc.unique(found).to_pylist() if validate is None or validate(s)]
            if good:
                hit = pc.fill_null(pc.is_in(extracted, pa.array(good, pa.string())), False)
                carrying = pc.or_(carrying, hit)
        state.embedded_rows += round(_weighted(weights, carrying) * scale)

    def candidates(self, state: FieldState) -> list[Candidate]:
        """Every type the evidence supports for this field, each with its confidence: the detectors'
        shares and name context, then what the native type and the learned model add."""
        found: list[Candidate] = []
        n = max(1, state.non_null)
        for d in self.detectors:
            valid = state.valid.get(d.name, 0)
            if d.name == FREE_TEXT or valid == 0:
                continue
            share = valid / n
            hit = d.context_hit(state.tokens)
            context = state.tokens if hit else ()
            if not hit and d.shape_only and THING_WORDS.intersection(state.tokens):
                continue  # ``sku``, ``batch_code``, ``firmware``: the name says what the shape is
            if d.column_rule is not None and not d.column_rule(state.stats(d.name)):
                continue
            if d.vocabulary and state.stats_distinct < 2:
                continue  # one value repeated (``M``, ``x``) in every row tells nothing of anyone
            if share >= d.min_share:
                conf = 0.55 + 0.35 * share + (0.1 if hit else 0.0)
                why = f"{share:.0%} valid" + (", name agrees" if hit else "")
            elif hit and share >= 0.3:
                conf = 0.4 + 0.4 * share
                why = f"name, {share:.0%} valid"
            elif d.unmistakable and share >= 0.3 and valid >= 20:
                conf = 0.4 + 0.4 * share  # a contact column half e-mails, half something else, holds e-mails
                why = f"{share:.0%} valid, mixed with other values"
            else:
                continue
            found.append(Candidate(d.name, round(conf, 3), "detector", round(share, 4), context, why, d.priority,
                                   d.name))
        if state.prose and state.embedded_rows:
            ft = self._by_name.get(FREE_TEXT)
            hit = ft is not None and ft.detector.context_hit(state.tokens)
            share = state.embedded_rows / n
            if hit or (state.embedded_rows >= 2 and share >= 0.01):
                conf = min(1.0, 0.55 + min(0.35, share * 2) + (0.1 if hit else 0.0))
                # free text is the fallback: any whole-value type outranks it
                found.append(Candidate(FREE_TEXT, round(conf, 3), "detector", round(share, 4),
                                       state.tokens if hit else (), f"{share:.1%} of texts contain PII",
                                       -1, FREE_TEXT))
        found += native.candidates(state)
        if self.model is not None:
            found += self.model.candidates(state)
        return [c for c in found if native.allows(state.native, c, state)]

    @staticmethod
    def _rank(c: Candidate) -> tuple[bool, float, int]:
        return (c.pii_type != FREE_TEXT, c.confidence, c.priority)

    def decide(self, state: FieldState, store: str, collection: str) -> Classification:
        """The field's PII type (or None), a confidence in [0, 1], and the evidence for it."""
        ranked = sorted(self.candidates(state), key=self._rank, reverse=True)
        best = ranked[0] if ranked else None
        runner = next((c for c in ranked[1:] if best is None or c.pii_type != best.pii_type), None)
        pii_type: str | None = None
        confidence, reason, matched = 0.0, "", 0
        if best is not None:
            pii_type, confidence, reason = best.pii_type, best.confidence, best.why
            matched = state.embedded_rows if pii_type == FREE_TEXT else state.valid.get(pii_type, 0)
        if state.non_null == 0:
            reason = f"undecidable: all {state.nulls:,} value(s) null or empty"
        elif state.stats_distinct == 1 and state.non_null >= 10:
            reason = "; ".join(r for r in (reason, f"one value repeated in all {state.non_null:,} rows") if r)
        extra = ["count estimated from a random sample of rows"] if state.estimated and pii_type else []
        if state.cut:
            extra.append(f"{state.cut:,} value(s) longer than {MAX_VALUE_CHARS:,} characters cut before matching")
        notes = "; ".join(state.notes + extra)
        native = state.native
        lost = ""
        if runner is not None and best is not None:
            lost = f"{runner.why}; lower confidence ({runner.confidence:.2f} < {best.confidence:.2f})"
        evidence = Evidence(
            decided_by=best.decided_by if best else "none", detector=best.detector if best else None,
            share=best.share if best else None, context=best.context if best else (),
            native_type=native.name if native else None, kind=native.kind.value if native else None,
            runner_up=runner.pii_type if runner else None, runner_up_share=runner.share if runner else None,
            lost_because=lost, notes=tuple(state.notes + extra))
        return Classification(
            store=store, collection=collection, field=state.name, pii_type=pii_type,
            confidence=round(confidence, 3), matched=matched, sampled=state.non_null, nulls=state.nulls,
            distinct=state.stats_distinct if state.stats_seen else None,
            reason="; ".join(r for r in (reason, notes) if r),
            native_type=native.name if native else None, evidence=evidence)

