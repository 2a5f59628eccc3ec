"""Record ids shaped like each vendor's, issued in creation order.

- Salesforce: 18-character ids — key prefix (006 Opportunity, 001 Account,
  005 User, 003 Contact, 012 RecordType), pod, a base-62 record number, and the
  real case-safety suffix, so tools that validate or shorten ids accept them.
  The suffix is computed here, not with the adapter's function: the sandbox
  checks the adapter, so a mistake in one must not be copied into the other.
- HubSpot: numeric strings, increasing with gaps; custom pipelines and stages
  get numeric ids too (built-in ones keep theirs, e.g. ``default``).
- Pipedrive: integers (as strings), increasing with gaps.
"""

from __future__ import annotations

import random

import numpy as np

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Salesforce's case-safety suffix: one of these per 5 characters, indexed by which of them are upper case
# (bit i for the i-th character).
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

SF_PREFIX = {"deal": "006", "account": "001", "owner": "005", "contact": "003", "pipeline": "012"}


def salesforce_suffix(id15: str) -> str:
    """The 3-character case-safety suffix of a 15-character Salesforce id."""
    flags = "".join("1" if c.isascii() and c.isupper() else "0" for c in id15)
    return "".join(_SUFFIX_ALPHABET[int(flags[start: start + 5][::-1], 2)] for start in (0, 5, 10))


def salesforce_id(prefix: str, number: int, pod: str = "5g") -> str:
    """The 18-character id of record ``number`` with key ``prefix``."""
    digits = []
    for _ in range(9):
        number, r = divmod(number, 62)
        digits.append(_BASE62[r])
    short = f"{prefix}{pod}0{''.join(reversed(digits))}"
    return short + salesforce_suffix(short)


def salesforce_ids(prefix: str, numbers: np.ndarray, pod: str = "5g") -> list[str]:
    """:func:`salesforce_id` for many record numbers at once (a million in about a second)."""
    n = numbers.size
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, :6] = np.frombuffer(f"{prefix}{pod}0".encode(), dtype=np.uint8)
    alphabet = np.frombuffer(_BASE62.encode(), dtype=np.uint8)
    rest = numbers.astype(np.int64)
    for col in range(14, 5, -1):
        rest, digit = np.divmod(rest, 62)
        chars[:, col] = alphabet[digit]
    upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    suffix_alphabet = np.frombuffer(_SUFFIX_ALPHABET.encode(), dtype=np.uint8)
    for chunk in range(3):
        chars[:, 15 + chunk] = suffix_alphabet[upper[:, chunk * 5: chunk * 5 + 5] @ weights]
    text = chars.tobytes().decode("ascii")
    return [text[i: i + 18] for i in range(0, 18 * n, 18)]


class IdMaker:
    """Issues ids per system (0 salesforce, 1 hubspot, 2 pipedrive) and kind, increasing like the real ones."""

    # (first id, largest gap) per system and kind for numeric ids
    _NUMERIC = {
        (1, "deal"): (9_100_000_000, 40), (1, "account"): (5_400_000_000, 60), (1, "contact"): (101, 30),
        (1, "owner"): (12_100_000, 900), (1, "pipeline"): (75_000_000, 9_000), (1, "stage"): (140_000_000, 5_000),
        (2, "deal"): (1, 3), (2, "account"): (1, 2), (2, "contact"): (1, 2), (2, "owner"): (11_200_000, 5_000),
        (2, "pipeline"): (1, 1), (2, "stage"): (1, 1),
    }

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._next: dict[tuple[int, str], int] = {}

    def _number(self, system: int, kind: str) -> int:
        key = (system, kind)
        start, gap = self._NUMERIC.get(key, (0, 3))  # Salesforce: small gaps from a per-world start
        if key not in self._next:
            self._next[key] = start or 600_000 + int(self._rng.random() * 400_000)
        current = self._next[key]
        self._next[key] = current + 1 + int(self._rng.random() * gap)
        return current

    def _id(self, system: int, kind: str) -> str:
        number = self._number(system, kind)
        return salesforce_id(SF_PREFIX[kind], number) if system == 0 else str(number)

    def many(self, system: int, kind: str, count: int) -> list[str]:
        """``count`` consecutive ids of one kind, as :meth:`owner` would issue them one by one."""
        if count == 0:
            return []
        key = (system, kind)
        start, gap = self._NUMERIC.get(key, (0, 3))
        if key not in self._next:
            self._next[key] = start or 600_000 + int(self._rng.random() * 400_000)
        gaps = np.frombuffer(self._rng.randbytes(8 * count), dtype=np.uint64) % np.uint64(gap)
        steps = 1 + gaps.astype(np.int64)
        numbers = self._next[key] + np.concatenate(([0], np.cumsum(steps)[:-1]))
        self._next[key] = int(numbers[-1] + steps[-1])
        if system == 0:
            return salesforce_ids(SF_PREFIX[kind], numbers)
        return [str(x) for x in numbers.tolist()]

    def owner(self, system: int) -> str:  # one by one: owners are few, and numbered as they are made
        return self._id(system, "owner")

    def pipeline(self, system: int, given: str | None) -> str:
        return given or self._id(system, "pipeline")

    def stage(self, system: int, given: str | None, label: str) -> str:
        if system == 0:
            return label  # Salesforce stages are picklist values: StageName holds the label
        return given or str(self._number(system, "stage"))
