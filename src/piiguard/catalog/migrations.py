"""Catalog schema, as an append-only list of migrations. Never edit a released step: add one.

The catalog holds names, types, counts and confidences — never a sampled value.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE stores (
        name TEXT PRIMARY KEY,
        engine TEXT NOT NULL,
        address TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT,
        mode TEXT NOT NULL,
        sample_size INTEGER NOT NULL
    );
    CREATE TABLE classifications (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        store TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        pii_type TEXT,
        confidence REAL NOT NULL,
        matched INTEGER NOT NULL,
        sampled INTEGER NOT NULL,
        nulls INTEGER NOT NULL,
        distinct_values INTEGER,
        reason TEXT NOT NULL
    );
    CREATE INDEX classifications_store ON classifications(store, scan_id);
    CREATE TABLE collections (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        store TEXT NOT NULL,
        name TEXT NOT NULL,
        rows_estimate INTEGER,
        rows_estimate_kind TEXT NOT NULL,
        rows_read INTEGER NOT NULL
    );
    CREATE TABLE subjects (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        store TEXT NOT NULL,
        estimate INTEGER NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE TABLE problems (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        store TEXT NOT NULL,
        collection TEXT,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        hint TEXT
    );
    """,
    """
    CREATE TABLE findings (
        store TEXT NOT NULL,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        vantage TEXT NOT NULL,
        evidence TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (store, check_id)
    );
    CREATE TABLE finding_events (
        store TEXT NOT NULL,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE exposures (
        id INTEGER PRIMARY KEY,
        store TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        checks TEXT NOT NULL,
        pii_types TEXT NOT NULL,
        subjects_estimate INTEGER
    );
    CREATE TABLE alerts (
        dedupe_key TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        store TEXT NOT NULL,
        check_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        dedupe_key TEXT NOT NULL REFERENCES alerts(dedupe_key),
        sink TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try TEXT NOT NULL,
        delivered_at TEXT,
        last_error TEXT,
        PRIMARY KEY (dedupe_key, sink)
    );
    """,
    """
    CREATE TABLE containments (
        id INTEGER PRIMARY KEY,
        store TEXT NOT NULL,
        engine TEXT NOT NULL,
        status TEXT NOT NULL,
        plan TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    """,
    """
    CREATE TABLE copies (
        id INTEGER PRIMARY KEY,
        source_store TEXT NOT NULL,
        source_collection TEXT NOT NULL,
        target_store TEXT NOT NULL,
        target_engine TEXT NOT NULL,
        target_collection TEXT NOT NULL,
        transforms TEXT NOT NULL,      -- JSON: field -> masker, options, reason (never a value)
        key_id TEXT NOT NULL,          -- HMAC of a fixed label under the key: names the key, reveals nothing
        owner TEXT NOT NULL,
        purpose TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        status TEXT NOT NULL,          -- writing | active | failed | removed
        rows INTEGER,
        subjects INTEGER,
        accepted_risk TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT ''
    );
    """,
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        status TEXT NOT NULL,          -- open | closed
        stores TEXT NOT NULL,          -- JSON list of store names
        window_start TEXT NOT NULL,    -- the exposure window
        window_end TEXT,
        aware_at TEXT NOT NULL,        -- when the company became aware: the regulators' clocks start here
        pii_types TEXT NOT NULL,       -- JSON list
        subjects_estimate INTEGER,
        exposure_id INTEGER
    );
    CREATE TABLE timeline (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,         -- canonical JSON: names, counts, hashes; never a raw value
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,            -- SHA-256 of prev_hash and this entry: a hash chain
        PRIMARY KEY (incident_id, seq)
    );
    CREATE TABLE scope (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        subject TEXT NOT NULL,         -- keyed hash of the subject's identifier, never the identifier
        fields TEXT NOT NULL,          -- JSON list of exposed PII types
        PRIMARY KEY (incident_id, subject)
    );
    CREATE TABLE notices (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        subject TEXT NOT NULL,         -- the same keyed hash
        status TEXT NOT NULL,          -- sent
        at TEXT NOT NULL,
        PRIMARY KEY (incident_id, subject)
    );
    CREATE TABLE responses (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        responder TEXT NOT NULL,
        subject TEXT NOT NULL,         -- keyed hash; "*" for a response to everyone
        at TEXT NOT NULL,
        PRIMARY KEY (incident_id, responder, subject)
    );
    """,
    """
    -- the timeline's seal: an HMAC of its entry count and last entry under the timeline key, so removing
    -- the last entries (or all of them) is found without an outside record (piiguard.catalog.timeline)
    ALTER TABLE incidents ADD COLUMN timeline_seal TEXT;
    """,
    """
    -- who owns a running scan or copy (so one killed mid-way is marked interrupted), and exactly what
    -- each copy created (so expiry removes only that)
    ALTER TABLE scans ADD COLUMN status TEXT NOT NULL DEFAULT 'finished';  -- running | finished | failed | interrupted
    UPDATE scans SET status = 'interrupted' WHERE finished IS NULL;        -- started before owners were recorded
    ALTER TABLE scans ADD COLUMN owner_host TEXT;
    ALTER TABLE scans ADD COLUMN owner_pid INTEGER;
    ALTER TABLE scans ADD COLUMN owner_started TEXT;
    ALTER TABLE copies ADD COLUMN owner_host TEXT;
    ALTER TABLE copies ADD COLUMN owner_pid INTEGER;
    ALTER TABLE copies ADD COLUMN owner_started TEXT;
    -- JSON list of {kind, name, id}: the physical objects the copy made (table OID, index UUID, file inode)
    ALTER TABLE copies ADD COLUMN objects TEXT NOT NULL DEFAULT '[]';
    UPDATE copies SET status = 'interrupted' WHERE status = 'writing';
    """,
    """
    -- where a copy's target is (scheme://[user@]host:port/database or scheme:///real/path, never a
    -- password): expiry and copy.expired find the target by it, not by a store name that may have
    -- moved; '' for copies registered before it was recorded
    ALTER TABLE copies ADD COLUMN target_url TEXT NOT NULL DEFAULT '';
    ALTER TABLE copies ADD COLUMN source_url TEXT NOT NULL DEFAULT '';  -- the same for the source
    """,
    """
    -- notices recorded a spool file at a time: the file's keyed hashes in one row, appended, where
    -- 10,000 keys put into the notices index touch most of its pages (at 2.4M people, 47 µs a notice)
    CREATE TABLE notice_batches (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        subjects BLOB NOT NULL,        -- keyed hashes (32-byte HMAC digests) concatenated, never an identifier
        PRIMARY KEY (incident_id, seq)
    );
    """,
    """
    -- discovery (piiguard.discovery): what sweeps found, the fingerprints of registered collections,
    -- canary customers and where they were seen or used, and which collections hold copies of which
    CREATE TABLE discovered (
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        kind TEXT NOT NULL,            -- store | identify-only | not-a-store | unknown | tarpit
        engine TEXT,
        product TEXT,
        version TEXT,
        evidence TEXT NOT NULL DEFAULT '',
        registered TEXT,               -- the configured store at this address when last seen, or NULL
        open INTEGER NOT NULL DEFAULT 0,   -- an outside check that exposes failed: anyone who reaches it gets in
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        gone_since TEXT,               -- a later sweep found it closed
        PRIMARY KEY (host, port)
    );
    CREATE TABLE fingerprints (
        store TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        kind TEXT NOT NULL,            -- key | email
        key_id TEXT NOT NULL,          -- which key built it (a keyed hash of the key, never the key)
        people INTEGER NOT NULL,       -- distinct values added
        capacity INTEGER NOT NULL,
        hashes INTEGER NOT NULL,
        built TEXT NOT NULL,
        bits BLOB NOT NULL,            -- the Bloom filter: keyed hashes' bit positions, never a value
        PRIMARY KEY (store, collection, field)
    );
    CREATE TABLE canaries (
        id INTEGER PRIMARY KEY,
        store TEXT NOT NULL,
        collection TEXT NOT NULL,
        count INTEGER NOT NULL,
        nonce TEXT NOT NULL,           -- random: the values are derived from it and the key, never stored
        key_id TEXT NOT NULL,
        fields TEXT NOT NULL,          -- JSON {field: kind}
        status TEXT NOT NULL,          -- planned | planted | removed
        created TEXT NOT NULL,
        planted TEXT,
        removed TEXT,
        digests BLOB NOT NULL          -- keyed hashes (32 bytes each) of every planted value, for matching
    );
    CREATE TABLE canary_hits (
        id INTEGER PRIMARY KEY,
        canary_id INTEGER NOT NULL REFERENCES canaries(id),
        at TEXT NOT NULL,
        channel TEXT NOT NULL,         -- http | smtp | scan
        source TEXT NOT NULL,          -- the client's address:port, or the store.collection it was found in
        detail TEXT NOT NULL DEFAULT '',
        incident_id INTEGER REFERENCES incidents(id)
    );
    CREATE TABLE copy_links (
        store TEXT NOT NULL,           -- a configured store's name or a discovered store's address
        collection TEXT NOT NULL,
        source_store TEXT NOT NULL,
        source_collection TEXT NOT NULL,
        via TEXT NOT NULL,             -- fingerprint | canary | copy-registry
        fields TEXT NOT NULL,          -- JSON [[copy field, source field], ...]
        people INTEGER NOT NULL,
        share REAL NOT NULL,
        sampled INTEGER NOT NULL,
        matched INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (store, collection, source_store, source_collection, via)
    );
    """,
    # A key fingerprint whose values fill their integer range (ids 1..N): weak alone. NULL: built before
    # this step, not known (rebuild to know). And whether a link's people are estimated from a sample.
    """
    ALTER TABLE fingerprints ADD COLUMN dense INTEGER;
    ALTER TABLE copy_links ADD COLUMN from_sample INTEGER NOT NULL DEFAULT 0;
    """,
    """
    -- a ClickHouse found on its HTTP and its native port is one inventory row (the HTTP port's):
    -- the other ports of the same server, a JSON list of numbers
    ALTER TABLE discovered ADD COLUMN also TEXT NOT NULL DEFAULT '[]';
    """,
    """
    -- a field's native type as the engine spells it, and the evidence for its decision as JSON
    -- (piiguard.model.Evidence: detector, shares, name words, runner-up; never a value)
    ALTER TABLE classifications ADD COLUMN native_type TEXT;
    ALTER TABLE classifications ADD COLUMN evidence TEXT;
    """,
)
