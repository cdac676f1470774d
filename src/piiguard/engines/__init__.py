"""One client module per engine: connect, probe, TLS and timeouts, used by checks, connectors,
containment, evidence and responders alike — so a timeout or a TLS setting means the same thing
whichever command opens the connection.

- :mod:`piiguard.engines.deadline`: an overall deadline on one network step, whatever the driver does.
- :mod:`piiguard.engines.tls`: the TLS a store's settings give, and refusing less than policy requires.
- ``postgres``, ``mysql``, ``redis``, ``clickhouse``, ``opensearch``, ``mongodb``, ``s3``: each
  engine's ``connect``/``client`` with every driver timeout set from one ``timeout`` and its TLS
  settings applied.

Nothing here imports a driver at package import time.
"""
