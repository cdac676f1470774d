"""Security protocol checks, one module per engine."""
