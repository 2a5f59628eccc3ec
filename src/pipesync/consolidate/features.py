"""The match keys of every deal, computed once and held as columns (numpy arrays).

Blocking and scoring then work on whole columns at a time: equality of coded
keys, differences of amounts and dates, rapidfuzz on text, all vectorized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from rapidfuzz import fuzz, process

from pipesync.consolidate.clustering import components
from pipesync.consolidate.keys import Lexicon, deal_name_key
from pipesync.consolidate.records import Record
from pipesync.consolidate.rules import DAY_KEYS, NUMBER_KEYS, SET_KEYS

MISSING = -1
# contacts and domains beyond this many per deal add nothing but cost
MAX_SET_VALUES = 4
_SECONDS_PER_DAY = 86400.0


def _codes(values: Sequence[str | None]) -> np.ndarray:
    """Each value as an integer code, equal values equal codes (None/"" → MISSING).

    Codes follow first appearance; records are sorted by key before this, so
    they are deterministic. Sorting by a text key uses ``Features.sort_column``.
    """
    code: dict[str, int] = {}
    setdefault = code.setdefault
    return np.fromiter(
        (setdefault(v, len(code)) if v else MISSING for v in values), dtype=np.int64, count=len(values)
    )


def _set_codes(values: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Sets of values as an (n, k) matrix of codes, padded with MISSING."""
    width = max(1, min(MAX_SET_VALUES, max(map(len, values), default=0)))
    kept = [vs[:width] for vs in values]
    counts = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
    code: dict[str, int] = {}
    setdefault = code.setdefault
    flat = np.fromiter((setdefault(v, len(code)) for vs in kept for v in vs), dtype=np.int64, count=int(counts.sum()))
    rows = np.repeat(np.arange(len(kept)), counts)
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.full((len(values), width), MISSING, dtype=np.int64)
    out[rows, columns] = flat
    return out


def company_groups(companies: np.ndarray, codes: np.ndarray, min_similarity: float = 90.0) -> np.ndarray:
    """Company codes grouped across spelling slips ("orgate elektronik" ~ "orggate elektronik").

    The distinct names are sorted (and sorted again by their reversed text, for
    slips near the start); each is compared with its next two neighbours and
    similar ones share a group, so typo variants of one company land in one
    block. Grouping only widens blocks; whether two deals match is still decided
    by scoring, so a chance similarity costs comparisons, not precision.
    """
    count = int(codes.max()) + 1 if len(codes) else 0
    if count == 0:
        return codes.copy()
    names = np.empty(count, dtype=object)
    names[codes[codes != MISSING]] = companies[codes != MISSING]
    alphabetical = np.argsort(names, kind="stable")
    reversed_alphabetical = np.argsort(np.array([n[::-1] for n in names], dtype=object), kind="stable")
    lefts, rights = [], []
    for order in (alphabetical, reversed_alphabetical):
        for d in (1, 2):
            a, b = order[:-d], order[d:]
            similar = process.cpdist(names[a], names[b], scorer=fuzz.ratio, score_cutoff=min_similarity, workers=-1)
            keep = similar >= min_similarity
            lefts.append(a[keep])
            rights.append(b[keep])
    group = components(count, np.concatenate(lefts), np.concatenate(rights))[codes]
    return np.where(codes == MISSING, MISSING, group)


def _days(value: datetime | None) -> float:
    return value.timestamp() / _SECONDS_PER_DAY if value is not None else np.nan


@dataclass(slots=True)
class Features:
    n: int
    text: dict[str, np.ndarray]  # company, name: the folded text ("" when missing), object arrays
    codes: dict[str, np.ndarray]  # every scalar key, coded
    sets: dict[str, np.ndarray]  # domains, contacts: (n, k) codes
    numbers: dict[str, np.ndarray]  # amount, close_date, created_at (days); NaN when missing

    def is_known(self, key: str) -> np.ndarray:
        if key in SET_KEYS:
            return self.sets[key][:, 0] != MISSING
        if key in NUMBER_KEYS or key in DAY_KEYS:
            return ~np.isnan(self.numbers[key])
        return self.codes[key] != MISSING

    def block_column(self, key: str) -> np.ndarray:
        """A scalar key as integer codes (whole days for dates), MISSING where unknown."""
        if key in NUMBER_KEYS or key in DAY_KEYS:
            values = self.numbers[key]
            known = ~np.isnan(values)
            return np.where(known, np.floor(np.where(known, values, 0)), MISSING).astype(np.int64)
        return self.codes[key]

    def sort_column(self, key: str) -> np.ndarray:
        if key in NUMBER_KEYS or key in DAY_KEYS:
            return self.numbers[key]
        if key in self.text:
            # alphabetical, so that near spellings sort next to each other
            order = np.argsort(self.text[key], kind="stable")
            rank = np.empty(self.n, dtype=np.int64)
            rank[order] = np.arange(self.n)
            return rank
        return self.codes[key]


def compute_features(records: Sequence[Record], lexicon: Lexicon) -> Features:
    # Accounts, websites and contact lists repeat across an account's deals: each is keyed once.
    company_of: dict[str | None, tuple[str, frozenset[str]]] = {}
    domain_of: dict[str | None, str | None] = {}
    contacts_of: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]] = {}

    company: list[str] = []
    names: list[str] = []
    numbers_in_name: list[str] = []
    account_domain: list[str | None] = []
    domains: list[tuple[str, ...]] = []
    contacts: list[tuple[str, ...]] = []
    for r in records:
        account = r.account_name
        known = company_of.get(account)
        if known is None:
            tokens = lexicon.company_tokens(account)
            known = company_of[account] = (" ".join(tokens), lexicon.name_noise(account, tokens))
        company.append(known[0])
        if r.name:
            name_key, numbers = deal_name_key(r.name, known[1])
        else:
            name_key = numbers = ""
        names.append(name_key)
        numbers_in_name.append(numbers)

        website = r.account_domain
        if website in domain_of:
            dom = domain_of[website]
        else:
            dom = domain_of[website] = lexicon.domain(website)
        account_domain.append(dom)

        listed = tuple(r.contact_emails)
        people = contacts_of.get(listed)
        if people is None:
            emails = tuple(sorted({e.strip().lower() for e in listed if e and "@" in e}))
            mail_domains = frozenset(d for e in emails if (d := lexicon.email_domain(e)))
            people = contacts_of[listed] = (emails, tuple(sorted(mail_domains)), mail_domains)
        contacts.append(people[0])
        if not dom or dom in people[2]:
            domains.append(people[1])
        elif not people[2]:
            domains.append((dom,))
        else:
            domains.append(tuple(sorted(people[2] | {dom})))

    n = len(records)
    company_text = np.array(company, dtype=object)
    company_codes = _codes(company)
    statuses = [r.status if r.status != "open" else None for r in records]
    codes = {
        "company": company_codes,
        "company_group": company_groups(company_text, company_codes),
        "outcome": _codes(statuses),
        "name": _codes(names),
        "name_numbers": _codes(numbers_in_name),
        "account_domain": _codes(account_domain),
        "owner": _codes([r.owner_email.strip().lower() if r.owner_email else None for r in records]),
        "source": _codes([r.source for r in records]),
    }
    numbers = {
        "amount": np.fromiter(
            (float(r.amount_reporting) if r.amount_reporting is not None else np.nan for r in records),
            dtype=np.float64, count=n,
        ),
        "close_date": np.fromiter(
            (r.close_date.toordinal() if r.close_date is not None else np.nan for r in records),
            dtype=np.float64, count=n,
        ),
        "created_at": np.fromiter((_days(r.created_at) for r in records), dtype=np.float64, count=n),
    }
    sets = {"domains": _set_codes(domains), "contacts": _set_codes(contacts)}
    text = {"company": company_text, "name": np.array(names, dtype=object)}
    return Features(n=n, text=text, codes=codes, sets=sets, numbers=numbers)
