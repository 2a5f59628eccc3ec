"""The match keys of every deal, computed once and held as columns (numpy arrays).

Blocking and scoring then work on whole columns at a time: equality of coded
keys, differences of amounts and dates, rapidfuzz on text, all vectorized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from pipesync.consolidate.clustering import components
from pipesync.consolidate.deal_names import DealNameReader
from pipesync.consolidate.keys import Lexicon, fold_words, name_numbers
from pipesync.consolidate.parallel import PARALLEL_FROM, SideJob
from pipesync.consolidate.records import Record
from pipesync.consolidate.romanize import company_skeleton
from pipesync.consolidate.rules import DAY_KEYS, NUMBER_KEYS, SET_KEYS
from pipesync.consolidate.tokens import TOKEN_KINDS, TokenReader, product_words

MISSING = -1
# contacts and domains beyond this many per deal add nothing but cost
MAX_SET_VALUES = 4
_SECONDS_PER_DAY = 86400.0


def _codes(values: Sequence[str | None]) -> np.ndarray:
    """Each value as an integer code, equal values equal codes (None/"" → MISSING).

    Codes follow first appearance; records are sorted by key before this, so
    they are deterministic. Sorting by a text key uses ``Features.sort_column``.
    """
    distinct = dict.fromkeys(values)
    distinct.pop(None, None)
    distinct.pop("", None)
    code = {v: i for i, v in enumerate(distinct)}
    code[None] = code[""] = MISSING
    return np.fromiter(map(code.__getitem__, values), dtype=np.int64, count=len(values))


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


def _factorize(values: Sequence, key: Callable[[Any], Any] | None = None) -> tuple[np.ndarray, list]:
    """(index of each value among the distinct ones, the distinct values in order of first appearance).

    Accounts, websites and contact lists repeat across an account's deals; keys
    are computed once per distinct value, and a column derived from the
    distinct values in first-appearance order codes exactly as the full column would.
    Values are told apart as objects first, vectorized: records hold each
    repeating value once (``records.pooled_records``), so only the distinct
    objects are compared by content — by ``key(value)`` if given (lists: ``tuple``).
    """
    by_object, first = _first_appearance(np.fromiter(map(id, values), dtype=np.int64, count=len(values)))
    objects = [values[i] for i in first.tolist()]
    position: dict[Any, int] = {}
    add = position.setdefault
    index = [add(v, len(position)) for v in (objects if key is None else map(key, objects))]
    return np.array(index, dtype=np.int64)[by_object], list(position)


def _first_appearance(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_factorize`` for integer keys, vectorized: (index of each key, row of each distinct key's first record)."""
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[by_appearance] = np.arange(len(distinct))
    return rank[inverse.ravel()], first[by_appearance]


def company_groups(companies: np.ndarray, codes: np.ndarray, min_similarity: float = 90.0) -> np.ndarray:
    """Company codes grouped across spelling slips ("orgate elektronik" ~ "orggate elektronik") and
    words one system adds ("beaconway" ~ "beaconway media"), as the account comparison's fuzzy level reads them.

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
            similar = process.cpdist(names[a], names[b], scorer=fuzz.token_set_ratio, score_cutoff=min_similarity, workers=-1)
            keep = similar >= min_similarity
            lefts.append(a[keep])
            rights.append(b[keep])
    group = components(count, np.concatenate(lefts), np.concatenate(rights))[codes]
    return np.where(codes == MISSING, MISSING, group)


@dataclass(slots=True)
class Features:
    n: int
    text: dict[str, np.ndarray]  # company, name: the folded text ("" when missing), object arrays
    codes: dict[str, np.ndarray]  # every scalar key, coded
    sets: dict[str, np.ndarray]  # domains, contacts: (n, k) codes
    numbers: dict[str, np.ndarray]  # amount, close_date, created_at (days); NaN when missing
    tokens: dict[str, np.ndarray]  # distinguishing tokens of the deal name by kind (tokens.py): (n, k) codes

    def is_known(self, key: str) -> np.ndarray:
        if key in SET_KEYS:
            return self.sets[key][:, 0] != MISSING
        if key in NUMBER_KEYS or key in DAY_KEYS:
            return ~np.isnan(self.numbers[key])
        return self.codes[key] != MISSING

    def block_column(self, key: str) -> np.ndarray:
        """A scalar key as integer codes (whole days for dates), MISSING where unknown."""
        if key in NUMBER_KEYS or key in DAY_KEYS:
            # Dense codes, not the values: a credit (-4,500) or an amount of 10^15 must neither
            # collide with MISSING nor size an array by its value.
            values = self.numbers[key]
            known = ~np.isnan(values)
            codes = np.full(self.n, MISSING, dtype=np.int64)
            codes[known] = np.unique(np.floor(values[known]), return_inverse=True)[1]
            return codes
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
    """Every key of every record (sorted by key: codes follow record order).

    Deal names are keyed apart from the other columns, in a forked process for
    a large input (``parallel.py``): they need only the accounts' keys, and
    come back as a few arrays and the distinct name keys.
    """
    accounts = _account_keys(records, lexicon)
    with SideJob(_name_keys, records, accounts, lexicon, worth_it=len(records) >= PARALLEL_FROM) as name_job:
        codes, sets, numbers = _column_keys(records, lexicon)
        company_codes = _codes(accounts.companies)[accounts.of_deal]
        company_text = np.array(accounts.companies, dtype=object)[accounts.of_deal]
        codes["company"] = company_codes
        codes["company_group"] = company_groups(company_text, company_codes)
        codes["company_latin"] = _codes(accounts.skeletons)[accounts.of_deal]
        names = name_job.result()
    key = names.key_of_deal
    codes["name"] = _codes(names.keys)[key]
    codes["name_numbers"] = names.numbers
    codes["name_tokens"] = names.stated
    codes["subject"] = _codes(names.subjects)[key]
    sets["deal_type"] = names.types[key]
    text = {"company": company_text, "name": np.array(names.keys, dtype=object)[key],
            "subject": np.array(names.subjects, dtype=object)[key],
            "company_latin": np.array(accounts.skeletons, dtype=object)[accounts.of_deal]}
    return Features(n=len(records), text=text, codes=codes, sets=sets, numbers=numbers, tokens=names.tokens)


@dataclass(slots=True)
class _Accounts:
    of_deal: np.ndarray  # each deal's account, an index into the lists below
    companies: list[str]  # its company words ("" when none)
    noise: list[frozenset[str]]  # the words its deal names repeat (``Lexicon.name_noise``)
    skeletons: list[str]  # its company words romanised, as a skeleton (``romanize.company_skeleton``)


def _account_keys(records: Sequence[Record], lexicon: Lexicon) -> _Accounts:
    account, accounts = _factorize([r.account_name for r in records])
    words = [fold_words(a) if a else [] for a in accounts]
    tokens = [lexicon.company_words(w) for w in words]
    noise = [lexicon.name_noise(w, t) for w, t in zip(words, tokens)]
    companies = [" ".join(t) for t in tokens]
    return _Accounts(account, companies, noise, [company_skeleton(c, lexicon) for c in companies])


@dataclass(slots=True)
class _NameKeys:
    key_of_deal: np.ndarray  # each deal's name key, an index into the lists below
    keys: list[str]  # the distinct name keys: words beyond the account's
    subjects: list[str]  # each name key's subject ("" when none)
    types: np.ndarray  # each name key's deal types, coded (``_set_codes``)
    numbers: np.ndarray  # each deal's name numbers, coded
    stated: np.ndarray  # each deal's distinguishing tokens of every kind but product, as one code
    tokens: dict[str, np.ndarray]  # each deal's distinguishing tokens by kind, (n, k) codes


def _name_keys(records: Sequence[Record], accounts: _Accounts, lexicon: Lexicon) -> _NameKeys:
    account, noise = accounts.of_deal, accounts.noise
    # a name key depends on the name and its account: each distinct name is folded once, then keyed
    # once per distinct account it appears with
    name, distinct_names = _factorize([r.name for r in records])
    name_words = [fold_words(n) if n else [] for n in distinct_names]
    name_pair, first = _first_appearance(name * len(noise) + account)
    names = lexicon.name_keys(name_words, noise, zip(name[first].tolist(), account[first].tolist()))
    numbers_in_name = [name_numbers(words) for words in name_words]
    # distinguishing tokens, once per distinct name (tokens.py); products from the subjects below
    token_reader = TokenReader(lexicon)
    read = [token_reader.read(n, w) if n else {} for n, w in zip(distinct_names, name_words)]
    del name_words
    tokens = {kind: _set_codes([tuple(sorted(found.get(kind, ()))) for found in read])[name]
              for kind in TOKEN_KINDS if kind != "product"}
    # the rarer ones at once: two names stating the same phase, seats and region ("Phase IV" / "phase 4") agree
    # on what tells an account's deals apart, whatever their amounts say; a year is no such sign (an account
    # renews several products in one year)
    stated = _codes([";".join(f"{kind}={','.join(sorted(v))}" for kind, v in sorted(found.items()) if kind != "year")
                     for found in read])[name]
    # what a name key says beyond the account: the deal type and the subject (deal_names.py)
    reader = DealNameReader(lexicon, {word for company in accounts.companies for word in company.split()})
    name_key, distinct_keys = _factorize(names)
    types, subjects = zip(*[reader.read(k) for k in distinct_keys]) if distinct_keys else ((), ())
    accounts_of_key: list[set[int]] = [set() for _ in distinct_keys]
    for k, a in zip(name_key.tolist(), account[first].tolist()):
        accounts_of_key[k].add(a)
    products = product_words(list(subjects), accounts_of_key, len(noise))
    tokens["product"] = _set_codes([tuple(sorted(p)) for p in products])[name_key[name_pair]]
    return _NameKeys(name_key[name_pair], distinct_keys, list(subjects), _set_codes(types),
                     _codes(numbers_in_name)[name], stated, tokens)


def _column_keys(
    records: Sequence[Record], lexicon: Lexicon
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The codes, sets and numbers of every column but the account and deal names."""
    website, websites = _factorize([r.account_domain for r in records])
    website_domains = [lexicon.domain(w) for w in websites]
    listed, contact_lists = _factorize([r.contact_emails for r in records], key=tuple)
    emails = [tuple(sorted({e.strip().lower() for e in people if e and "@" in e})) for people in contact_lists]
    found = iter(lexicon.email_domains([e for people in emails for e in people]))
    mail_domains = [frozenset(d for d in islice(found, len(people)) if d) for people in emails]
    # a deal's domains: its account's and its contacts' (one set per distinct website and contact list)
    pair, first = _first_appearance(website * max(1, len(contact_lists)) + listed)
    domain_sets = []
    for w, c in zip(website[first].tolist(), listed[first].tolist()):
        dom, mails = website_domains[w], mail_domains[c]
        if not dom or dom in mails:
            domain_sets.append(tuple(sorted(mails)))
        elif not mails:
            domain_sets.append((dom,))
        else:
            domain_sets.append(tuple(sorted(mails | {dom})))

    owner, owners = _factorize([r.owner_email for r in records])
    status, statuses = _factorize([r.status for r in records])
    source, sources = _factorize([r.source for r in records])
    codes = {
        "outcome": _codes([s if s != "open" else None for s in statuses])[status],
        "account_domain": _codes(website_domains)[website],
        "owner": _codes([o.strip().lower() if o else None for o in owners])[owner],
        "source": _codes(sources)[source],
    }
    nan = np.nan
    numbers = {
        "amount": np.array(
            [float(a) if a is not None else nan for a in [r.amount_reporting for r in records]], dtype=np.float64
        ),
        "close_date": np.array(
            [d.toordinal() if d is not None else nan for d in [r.close_date for r in records]], dtype=np.float64
        ),
        "created_at": np.array(
            [t.timestamp() if t is not None else nan for t in [r.created_at for r in records]], dtype=np.float64
        ) / _SECONDS_PER_DAY,
    }
    sets = {"domains": _set_codes(domain_sets)[pair], "contacts": _set_codes(emails)[listed]}
    return codes, sets, numbers
