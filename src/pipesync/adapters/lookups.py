"""Related records (owners, companies, contacts) resolved in bulk and remembered.

Records the deals mention are fetched by id in the largest batches the API allows, each
once per run, so no read costs one call per deal and an account with 500,000 contacts
pays only for those on its deals. Where a list endpoint pages larger than the by-id
batch (Pipedrive: 500 against 100), a full read primes the cache from the list instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from pipesync.adapters.values import chunks

T = TypeVar("T")


class Lookup(Generic[T]):
    """id → record, fetched ``batch`` ids per call by ``fetch`` on first need."""

    def __init__(self, fetch: Callable[[list[str]], dict[str, T]], batch: int):
        self._fetch = fetch
        self.batch = batch
        self._known: dict[str, T | None] = {}

    def prime(self, records: dict[str, T]) -> None:
        """Remember records a list endpoint returned (cheaper per record than fetching by id)."""
        self._known.update(records)

    def unknown(self, ids: Iterable[str]) -> list[str]:
        """The ids not fetched yet, in first-mention order."""
        return [i for i in dict.fromkeys(ids) if i not in self._known]

    def resolve(self, ids: Iterable[str | None]) -> dict[str, T]:
        """The records for ``ids`` (ids the source does not know are left out)."""
        wanted = [i for i in dict.fromkeys(ids) if i is not None]
        missing = [i for i in wanted if i not in self._known]
        for batch in chunks(missing, self.batch):
            found = self._fetch(batch)
            for i in batch:
                self._known[i] = found.get(i)
        return {i: rec for i in wanted if (rec := self._known.get(i)) is not None}
