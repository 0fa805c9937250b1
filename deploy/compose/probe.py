#!/usr/bin/env python3
"""Readiness / liveness probe of the nxem image, read from a process's Prometheus /metrics.

    nxem-probe URL            live: the endpoint answers 200
    nxem-probe URL GAUGE      ready: the endpoint answers and GAUGE (no labels) is >= 1

e.g. ``nxem-probe http://127.0.0.1:9101/metrics nxem_collector_ready``. Exit 0 = healthy.
Standard library only: it runs in the container for the compose healthcheck and the
Kubernetes exec probes.
"""

from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    url = argv[1]
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 (loopback URL from the manifest)
            text = resp.read().decode("utf-8", "replace")
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
