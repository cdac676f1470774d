"""Renderers of a scan result: a Rich table for people, JSON for machines. Values never appear: only
names, types, counts and confidences exist in the model to begin with.

Names (stores, collections, fields, problems) are printed literally: they go to Rich as ``Text``, never
as markup, so a column named ``[/]`` or ``:smile:`` is shown as written and cannot break the table, and
through :func:`~piiguard.report.terminal.escaped`, so no control or bidi character reaches the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from piiguard.model import ScanResult
from piiguard.report.document import dumps
from piiguard.report.explain import evidence_dict
from piiguard.report.terminal import escaped, safe


def to_dict(result: ScanResult) -> dict[str, Any]:
    return {
        "scan_id": result.scan_id,
        "mode": result.mode.value,
        "sample_size": result.sample_size,
        "started": result.started.isoformat(timespec="seconds"),
        "finished": result.finished.isoformat(timespec="seconds"),
        "stores": [
            {
                "store": s.store,
                "engine": s.engine,
                "address": s.address,
                "subjects_estimate": s.subjects.estimate if s.subjects else None,
                "subjects_field": f"{s.subjects.collection}.{s.subjects.field}" if s.subjects else None,
                "subjects_estimate_kind": s.subjects.kind.value if s.subjects else None,
                "subjects_canaries_excluded": s.subjects.canaries if s.subjects else 0,
                "pii_types": list(s.pii_types),
                "collections": [
                    {"collection": c.name, "rows_estimate": c.rows_estimate,
                     "rows_estimate_kind": c.rows_estimate_kind.value, "rows_read": c.rows_read}
                    for c in s.collections
                ],
                "problems": [
                    {"kind": p.kind.value, "collection": p.collection, "message": p.message, "hint": p.hint}
                    for p in s.problems
                ],
            }
            for s in result.stores
        ],
        "fields": [
            {"store": f.store, "collection": f.collection, "field": f.field, "pii_type": f.pii_type,
             "confidence": f.confidence, "matched": f.matched, "sampled": f.sampled, "nulls": f.nulls,
             "reason": f.reason, "native_type": f.native_type, "evidence": evidence_dict(f)}
            for s in result.stores for c in s.collections for f in c.fields
        ],
    }


def render_json(result: ScanResult) -> str:
    return dumps(to_dict(result))


def render_table(result: ScanResult, console: Console, *, all_fields: bool = False) -> None:
    for s in result.stores:
        people = (f"{s.subjects.estimate:,} people ({s.subjects.kind.value}, from "
                  f"{s.subjects.collection}.{s.subjects.field}"
                  + (f"; excludes {s.subjects.canaries:,} planted canaries" if s.subjects.canaries else "")
                  + ")") if s.subjects else "no customer key found"
        console.print(Text.assemble("\n", (escaped(s.store), "bold"),
                                    escaped(f" ({s.engine}, {s.address}) — {people}")))
        table = Table(show_header=True, header_style="bold")
        for col in ("collection", "field", "PII type", "confidence", "matched"):
            table.add_column(col, overflow="fold")
        shown = 0
        for c in s.collections:
            for f in c.fields:
                if f.pii_type is None and not all_fields:
                    continue
                shown += 1
                table.add_row(safe(c.name), safe(f.field), safe(f.pii_type or "-"), f"{f.confidence:.2f}",
                              f"{f.matched}/{f.sampled}")
        if shown:
            console.print(table)
        else:
            console.print("  no PII found" if s.collections else "  nothing was read")
        for p in s.problems:
            where = f"{p.collection}: " if p.collection else ""
            hint = f" — {p.hint}" if p.hint else ""
            console.print(Text.assemble("  ", ("problem", "red"), escaped(f" {where}{p.message}{hint}")))
