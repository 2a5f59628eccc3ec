"""Golden ids that do not churn.

A cluster keeps the golden id most of its members had last time (the
persisted ``deal_links``); a new cluster takes an id derived from its smallest
member key. So re-running without changes yields the same ids, and adding a
duplicate changes only the id of the cluster it joins — and not even that one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

GOLDEN_PREFIX = "gd_"


def derived_id(key: str, attempt: int = 0) -> str:
    text = key if attempt == 0 else f"{key}#{attempt}"
    return GOLDEN_PREFIX + hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


def assign_golden_ids(clusters: Sequence[Sequence[str]], previous: Mapping[str, str]) -> list[str]:
    """One id per cluster (member keys sorted); ``previous`` maps deal key → last golden id."""
    ids: list[str | None] = [None] * len(clusters)
    claimed: set[str] = set()
    if previous:
        # the largest share of a previous cluster keeps its id; ties to the smaller member key
        bids = []
        for c, keys in enumerate(clusters):
            if len(keys) == 1:  # most clusters: no count needed
                if (gid := previous.get(keys[0])) is not None:
                    bids.append((-1, keys[0], gid, c))
                continue
            counts = Counter(previous[k] for k in keys if k in previous)
            bids.extend((-count, keys[0], gid, c) for gid, count in counts.items())
        bids.sort()
        for _, _, gid, c in bids:
            if ids[c] is None and gid not in claimed:
                ids[c] = gid
                claimed.add(gid)
    for c, keys in enumerate(clusters):
        if ids[c] is None:
            attempt = 0
            gid = derived_id(keys[0])
            while gid in claimed:
                attempt += 1
                gid = derived_id(keys[0], attempt)
            ids[c] = gid
            claimed.add(gid)
    return ids  # type: ignore[return-value]
