"""The in-process throttle under a flood of new visitors: per-call cost of ``allow`` once
the table is full (every call must evict), and while it is filling.

    python -m bench.throttle_eviction [--entries 200000] [--calls 2000]

Before issue #10 (item 7), a full table scanned every entry under its lock on each new
visitor: about 7 ms a call at 200,000 entries. Eviction is now O(1) amortised.
"""

from __future__ import annotations

import argparse
import time

from django_pageviews.throttle import MAX_ENTRIES, Throttle


def per_call(throttle: Throttle, first: int, calls: int, now: float) -> float:
    """Mean seconds per ``allow`` of ``calls`` keys never seen before."""
    started = time.perf_counter()
    for i in range(first, first + calls):
        throttle.allow(("visitor", i), 1800, now=now)
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=MAX_ENTRIES)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    throttle = Throttle(max_entries=args.entries)
    filling = per_call(throttle, 0, args.entries, now=0.0)
    full = per_call(throttle, args.entries, args.calls, now=1.0)  # none expired yet
    print(f"table of {args.entries:,} entries")
    print(f"  filling:             {filling * 1e6:10.2f} us per call")
    print(f"  full, none expired:  {full * 1e6:10.2f} us per call ({args.calls:,} calls)")


if __name__ == "__main__":
    main()
