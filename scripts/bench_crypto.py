"""What encrypting faces at rest costs (faceapp.store.crypto, AES-256-GCM) on this machine.

    python scripts/bench_crypto.py [--gallery 100000] [--repeat 3]

* enrollment: a new data key, one wrap with the site key, two seals (a 128-d float32
  template, 512 bytes, and a ~10 kB JPEG face crop), then the reverse (unwrap, two unseals);
* gallery load: opening N sealed 512-byte templates, (a) one person per template (N
  unwraps + N unseals, the worst case), (b) 10 templates per person (N/10 unwraps + N
  unseals), and the float32 matrix built from them.

Best of ``--repeat`` runs (the machine is shared). Prints JSON; no key material.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from faceapp.store import crypto  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_enrollment(site: crypto.SiteKey, n: int, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    template = rng.standard_normal(128).astype("<f4").tobytes()
    jpeg = rng.integers(0, 256, 10_240, dtype=np.uint8).tobytes()  # incompressible, like JPEG data

    def encrypt_all():
        out = []
        for i in range(n):
            dek = crypto.new_data_key()
            out.append((
                site.wrap(dek, aad=b"faceapp/person/%d" % i),
                crypto.seal(dek, template, aad=b"faceapp/template/%d/embedding" % i),
                crypto.seal(dek, jpeg, aad=b"faceapp/template/%d/face" % i),
            ))
        return out

    blobs = encrypt_all()

    def decrypt_all():
        for i, (wrapped, emb, face) in enumerate(blobs):
            dek = site.unwrap(wrapped, aad=b"faceapp/person/%d" % i)
            crypto.unseal(dek, emb, aad=b"faceapp/template/%d/embedding" % i)
            crypto.unseal(dek, face, aad=b"faceapp/template/%d/face" % i)

    enc = best(encrypt_all, repeat)
    dec = best(decrypt_all, repeat)
    return {
        "enrollments": n,
        "encrypt_us_per_enrollment": round(enc / n * 1e6, 1),
        "decrypt_us_per_enrollment": round(dec / n * 1e6, 1),
        "bytes_added_per_enrollment": crypto.WRAPPED_KEY_BYTES + 2 * crypto.OVERHEAD,
    }


def bench_gallery(site: crypto.SiteKey, n: int, per_person: int, repeat: int) -> dict:
    rng = np.random.default_rng(1)
    templates = rng.standard_normal((n, 128)).astype("<f4")
    persons = []
    for p in range(0, n, per_person):
        dek = crypto.new_data_key()
        rows = [
            crypto.seal(dek, templates[i].tobytes(), aad=b"faceapp/template/%d/embedding" % i)
            for i in range(p, min(p + per_person, n))
        ]
        persons.append((p, site.wrap(dek, aad=b"faceapp/person/%d" % p), rows))

    result: dict[str, np.ndarray] = {}

    def load():
        parts = []
        for p, wrapped, rows in persons:
            dek = site.unwrap(wrapped, aad=b"faceapp/person/%d" % p)
            for j, blob in enumerate(rows):
                parts.append(crypto.unseal(dek, blob, aad=b"faceapp/template/%d/embedding" % (p + j)))
        result["matrix"] = np.frombuffer(b"".join(parts), dtype="<f4").reshape(n, 128)

    seconds = best(load, repeat)
    assert np.array_equal(result["matrix"], templates)
    return {
        "templates": n,
        "templates_per_person": per_person,
        "unwraps": len(persons),
        "seconds": round(seconds, 3),
        "us_per_template": round(seconds / n * 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--gallery", type=int, default=100_000, help="sealed templates to open")
    ap.add_argument("--enrollments", type=int, default=2_000, help="enrollments to time")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    a = ap.parse_args(argv)

    import cryptography

    site = crypto.SiteKey.generate()
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "cryptography": cryptography.__version__,
        },
        "enrollment": bench_enrollment(site, a.enrollments, a.repeat),
        "gallery_one_person_per_template": bench_gallery(site, a.gallery, 1, a.repeat),
        "gallery_ten_templates_per_person": bench_gallery(site, a.gallery, 10, a.repeat),
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
