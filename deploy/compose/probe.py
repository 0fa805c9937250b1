#!/usr/bin/env python3
"""Health probe of the nxem image, for the compose healthchecks (Kubernetes uses httpGet).

    nxem-probe URL            healthy: the endpoint answers 200
    nxem-probe URL GAUGE      ready: the endpoint answers and GAUGE (no labels) is >= 1

e.g. ``nxem-probe http://127.0.0.1:9102/readyz`` (every process serves /healthz and /readyz
beside /metrics, nxem/health.py). Exit 0 = healthy; otherwise the reason (for /readyz the
JSON body naming the failing checks) goes to stderr, which ``docker inspect`` shows.
Standard library only.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    url = argv[1]
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 (loopback URL from the manifest)
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        print(f"{url}: {err.code} {err.read().decode('utf-8', 'replace')[:2000]}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{url}: {err}", file=sys.stderr)
        return 1
    if len(argv) == 2:
        return 0
    gauge = argv[2]
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == gauge:
            ok = float(value) >= 1.0
            if not ok:
                print(f"{gauge} = {value}", file=sys.stderr)
            return 0 if ok else 1
    print(f"{gauge} not exposed by {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
