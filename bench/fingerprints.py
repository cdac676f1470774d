"""Benchmark for copy fingerprints: build and match speed, memory at 10M people, measured false matches.

    python bench/fingerprints.py [--people 10000000] [--held-out 1000000]

Adds ``--people`` synthetic e-mails (this script's generator: numbered names at example domains) to a
fingerprint the way ``fingerprint build`` does (normalise, HMAC-SHA256 under a key, two 64-bit words,
Bloom filter sized for people × 1.25 at 1e-4), then matches ``--held-out`` e-mails from a DIFFERENT
generator (Faker, de_DE and ja_JP, never looked at while choosing any parameter: see
docs/benchmark.md) against it and prints the false-match rate. A held-out value that really is in
the added set (the baseline tells) is counted apart, not as a false match. Baseline, in the same run:
a Python ``set`` of the 32-byte digests — exact, no false matches — its build and lookup time and
its memory. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from piiguard.catalog import Catalog  # noqa: E402
from piiguard.discovery import fingerprints as fp  # noqa: E402
from piiguard.discovery.bloom import HEADROOM, Bloom, words  # noqa: E402

FIRST = ("anna", "ben", "chen", "dara", "emil", "fatima", "goran", "hana", "ivan", "jun", "kofi", "lena", "mateo",
         "nia", "omar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "viktor", "wen", "ximena", "yusuf", "zoe")
LAST = ("smith", "garcia", "nguyen", "okafor", "schmidt", "rossi", "kowalski", "tanaka", "silva", "haddad",
        "novak", "jensen", "murphy", "dubois", "ivanova", "cohen", "patel", "kim", "moreau", "larsen")
DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "shop.example")
BATCH = 100_000


def synthetic_emails(n: int, seed: int = 1) -> list[str]:
    """The generator whose values are added: first.last + a unique number, at example domains."""
    rnd = random.Random(seed)
    return [f"{rnd.choice(FIRST)}.{rnd.choice(LAST)}{i}@{rnd.choice(DOMAINS)}" for i in range(n)]


def held_out_emails(n: int) -> list[str]:
    """Another generator: Faker's German and Japanese locales (their names, free-mail domains)."""
    from faker import Faker

    fake = Faker(["de_DE", "ja_JP"])
    Faker.seed(20261202)
    return [fake.email() for _ in range(n)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hashed(key: bytes, values: list[str]) -> bytes:
    return b"".join(d for v in values if (d := fp.digest(key, v, fp.Kind.EMAIL)) is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000_000)
    parser.add_argument("--held-out", type=int, default=1_000_000)
    args = parser.parse_args()
    key = os.urandom(32)
    print(f"people {args.people:,}, held-out values {args.held_out:,}, cores {os.cpu_count()}")

    # Build: normalise + HMAC + words per batch (as fingerprint build reads batches), then the set.
    t = time.perf_counter()
    added = synthetic_emails(args.people)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    parts = [words(hashed(key, added[i:i + BATCH])) for i in range(0, len(added), BATCH)]
    hash_s = time.perf_counter() - t
    t = time.perf_counter()
    h1 = np.concatenate([p[0] for p in parts])
    h2 = np.concatenate([p[1] for p in parts])
    del parts
    order = np.sort(h1)
    people = int(np.count_nonzero(order[1:] != order[:-1])) + 1
    del order
    bloom = Bloom.empty(int(people * HEADROOM))
    bloom.add(h1, h2)
    set_s = time.perf_counter() - t
    build_s = hash_s + set_s
    print(f"generate {gen_s:.1f} s (not counted)")
    print(f"build: {args.people / build_s:,.0f} values/s ({build_s:.1f} s: hash {hash_s:.1f} s, count+set "
          f"{set_s:.1f} s); distinct people {people:,}")
    print(f"set: {bloom.bits:,} bits = {bloom.bits / 8 / 1e6:.1f} MB (sized for people x {HEADROOM}), "
          f"k={bloom.hashes}, fill {bloom.fill():.3f}, "
          f"rate from bits {bloom.false_rate():.2e}; build peak {(h1.nbytes + h2.nbytes) / 1e6:.0f} MB of words")
    path = Path(f"/tmp/bench-fp-{os.getpid()}.db")
    try:
        with Catalog(path) as cat:
            cat.save_fingerprint({"store": "prod", "collection": "customers", "field": "email", "kind": "email",
                                  "key_id": fp.key_id(key), "people": people, "capacity": int(people * HEADROOM),
                                  "hashes": bloom.hashes, "built": None, "bits": bloom.to_bytes()})
            t = time.perf_counter()
            src = fp.sources(cat, key)[0]
            load_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(f"catalog: {size / 1e6:.1f} MB on disk for this fingerprint; loaded back in {load_s:.2f} s")
    finally:
        for p in path.parent.glob(path.name + "*"):
            p.unlink()

    # Match: held-out values from another generator.
    t = time.perf_counter()
    others = held_out_emails(args.held_out)
    print(f"held-out generate {time.perf_counter() - t:.1f} s (not counted)")
    t = time.perf_counter()
    o1, o2 = words(hashed(key, others))
    found = src.bloom.contains(o1, o2)
    match_s = time.perf_counter() - t
    print(f"match: {len(others) / match_s:,.0f} values/s ({match_s:.1f} s, hash + test)")

    # Baseline: a Python set of the digests (exact).
    del h1, h2
    gc.collect()
    tracemalloc.start()
    t = time.perf_counter()
    exact: set[bytes] = set()
    for i in range(0, len(added), BATCH):
        exact.update(d for v in added[i:i + BATCH] if (d := fp.digest(key, v, fp.Kind.EMAIL)) is not None)
    base_build = time.perf_counter() - t
    base_mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t = time.perf_counter()
    truly = [d in exact for v in others if (d := fp.digest(key, v, fp.Kind.EMAIL)) is not None]
    base_match = time.perf_counter() - t
    really = int(sum(truly))
    false = int(found.sum()) - really
    tested = len(truly) - really
    print(f"false matches: {false:,} of {tested:,} held-out values not in the set = {false / max(tested, 1):.2e} "
          f"(target 1e-4; predicted from bits {src.rate:.2e}); {really:,} held-out values really were added")
    print(f"baseline set of digests: build {len(added) / base_build:,.0f} values/s, "
          f"match {len(others) / base_match:,.0f} values/s, "
          f"memory {base_mem / 1e6:,.0f} MB (vs {bloom.bits / 8 / 1e6:.1f} MB), no false matches")
    print(f"peak RSS {rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
