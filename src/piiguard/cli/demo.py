"""``piiguard demo``: build a small customer database and an "analytics export" of it, then scan both."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import typer

from piiguard.catalog import Catalog
from piiguard.model import Store
from piiguard.report import render_table
from piiguard.report.terminal import new_console
from piiguard.scanner import scan as run_scan

ROWS = 2000


def build(folder: Path, rows: int = ROWS) -> tuple[Path, Path]:
    """customers.db (SQLite: customers + devices tables) and exports/customers.parquet (a raw copy)."""
    import pyarrow as pa  # Arrow and Faker are slow to import: only the demo needs them here
    import pyarrow.parquet as pq

    from piiguard import synthetic

    data = synthetic.rows(rows, seed=2026)
    names = [c.name for c in synthetic.COLUMNS]
    db_path = folder / "customers.db"
    db_path.unlink(missing_ok=True)
    with sqlite3.connect(db_path) as db:
        cols = ", ".join(f'"{n}"' + (" PRIMARY KEY" if n == "customer_id" else "") for n in names)
        db.execute(f"CREATE TABLE customers ({cols})")
        db.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * len(names))})",
                       [tuple(data[n][i] for n in names) for i in range(rows)])
        db.execute("CREATE TABLE devices (serial TEXT PRIMARY KEY, owner_id TEXT, mac TEXT, wifi_ssid TEXT, "
                   "firmware TEXT, settings JSON)")
        db.executemany("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)", [
            (data["device_serial"][i], data["customer_id"][i], data["device_mac"][i], data["wifi_ssid"][i],
             data["firmware_version"][i],
             f'{{"night_vision": true, "owner": {{"email": "{data["email"][i]}", '
             f'"photo_url": "{data["avatar_url"][i]}"}}}}')
            for i in range(rows)])
    export = folder / "exports"
    export.mkdir(exist_ok=True)
    keep = ("customer_id", "email", "nickname", "avatar_url", "wifi_ssid", "device_serial", "alexa_refresh_token",
            "last_login_ip", "plan", "login_count")
    pq.write_table(pa.table({k: pa.array([str(v) for v in data[k]]) for k in keep}), export / "customers.parquet")
    return db_path, export


def demo(
    folder: Path = typer.Option(None, "--dir", help="where to write the demo data (default: a temporary folder)"),
    rows: int = typer.Option(ROWS, "--rows", help="customers to generate"),
) -> None:
    """Build a small customer database and its analytics export (synthetic data), scan both, print findings."""
    out = new_console()
    base = folder or Path(tempfile.mkdtemp(prefix="piiguard-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    out.print(f"Generating {rows:,} synthetic customers in {base} …")
    db_path, export = build(base, rows)
    stores = [Store("customers-db", "sqlite", path=str(db_path), tags={"env": "prod"}),
              Store("analytics-export", "files", path=str(export), tags={"env": "analytics"})]
    with Catalog(base / "catalog.db") as cat:
        result = run_scan(stores, catalog=cat)
    render_table(result, out)
    out.print(f"\nCatalog written to {base / 'catalog.db'} (types and counts only, no values). "
              f"Try: piiguard scan sqlite:///{db_path} --format json")
