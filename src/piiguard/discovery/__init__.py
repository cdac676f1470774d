"""Discovery: find the stores and copies nobody registered.

The pipeline, one module a step (:func:`piiguard.discovery.run.discover` runs them in order)::

    networks.py      the allow-list (``discovery.networks``): which ranges may be swept, how many probes
    addresses.py     what a range reaches: private (every address), IPv6 ranges carrying IPv4 (refused)
    sweep.py         a rate- and concurrency-capped TCP connect sweep (asyncio); tarpits collapsed
    identify.py      which engine answers on each open port, with the engines' own outside probes
    probes.py        (the check targets' code), one per engine; HTTP servers and banners are not stores
    inventory.py     discovered stores in the catalog (``unregistered``, first/last seen), matched to
                     the configured stores, ``adopt``; the critical finding for an open unregistered store
    fingerprints.py  keyed probabilistic sets of registered stores' customer keys and e-mails, and the
                     match that proves another store holds a copy of them (and how many people)
    bloom.py         the set: a Bloom filter sized for its people and a false-match rate
    keys.py          the discovery key, by reference (key_env / key_file), never stored
    canaries.py      synthetic customers planted in production: plan, apply, remove, found in a copy
    canary_values.py how each canary value is derived from the key (never stored) and found in text
    canary_sql.py    the statements that plant and remove them (PostgreSQL, MariaDB/MySQL)
    trap.py          where a canary's token, link or e-mail lands (HTTP, SMTP): proof of access

Nothing here sends traffic to an address outside ``discovery.networks``; a sweep's targets are
checked against it before the first packet.
"""
