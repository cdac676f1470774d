"""Discovery: find the stores and copies nobody registered.

The pipeline, one module a step (:func:`piiguard.discovery.run.discover` runs them in order)::

    networks.py      the allow-list (``discovery.networks``): which ranges may be swept, how many probes
    sweep.py         a rate- and concurrency-capped TCP connect sweep (asyncio); tarpits collapsed
    identify.py      which engine answers on each open port, with the engines' own outside probes
                     (the check targets' code); HTTP servers and banners are not taken for stores
    inventory.py     discovered stores in the catalog (``unregistered``, first/last seen), matched to
                     the configured stores, ``adopt``; the critical finding for an open unregistered store
    fingerprints.py  keyed probabilistic sets of registered stores' customer keys and e-mails, and the
                     match that proves another store holds a copy of them (and how many people)
    canaries.py      synthetic customers planted in production: plan, apply, remove, found in a copy
    trap.py          where a canary's token, link or e-mail lands (HTTP, SMTP): proof of access

Nothing here sends traffic to an address outside ``discovery.networks``; a sweep's targets are
checked against it before the first packet.
"""
