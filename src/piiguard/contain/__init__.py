"""Containment: close an exposed store, as a planned, recorded, verified and reversible step."""
