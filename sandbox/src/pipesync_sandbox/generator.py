"""The seeded, labelled world the sandboxes serve: ``generate(seed, size)``.

One world is a set of real companies and real deals, entered into Salesforce,
HubSpot and Pipedrive the way real sales teams do it: the same deal in two or
three systems with drifting names, amounts, close dates and owners; duplicates
inside one system, some merged away; stale and deleted records; stage labels in
the language of the team. Every record keeps the real deal it stands for
(``SeedDeal.truth_id``), written out by :func:`write_labels`.

Deterministic: the same ``(seed, size)`` gives the same world, to the byte.
Bulk random draws are made with numpy, one array per attribute; Python only
assembles the records. ``size`` is the exact number of deal records across the
three systems.

:func:`canonical_deals` turns a world straight into canonical
:class:`pipesync.model.Deal` objects (no HTTP), with amounts converted at the
fixed rates in :data:`FX_TO_USD`.
"""

from __future__ import annotations

import csv
import gc
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from pipesync.model import Category, Deal
from pipesync.parsing import domain_of
from pipesync_sandbox import ids
from pipesync_sandbox.hard_cases import add_hard_cases
from pipesync_sandbox.lexicon import SHARED_OPEN, PipelineSpec, catalog, names
from pipesync_sandbox.names import (
    Company,
    NameMaker,
    Person,
    account_name_variant,
    email_for,
    person_name_variant,
    typo,
    website_variant,
)
from pipesync_sandbox.world import (
    SYSTEMS,
    Account,
    Contact,
    Owner,
    PipelineDef,
    SeedDeal,
    StageDef,
    StageVisit,
    SystemData,
    World,
)

# The world's "now" unless told otherwise: fixed, so a seed always means the same world.
DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

# Units of USD for one unit of each currency: fixed, documented rates (docs/sandbox.md)
# so amounts in the reporting currency are reproducible.
FX_TO_USD: dict[str, Decimal] = {
    "USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "CHF": Decimal("1.13"),
    "MXN": Decimal("0.058"), "CNY": Decimal("0.14"), "KRW": Decimal("0.00075"), "JPY": Decimal("0.0067"),
    "AED": Decimal("0.2723"), "SAR": Decimal("0.2667"),
}
# Amounts in these currencies are never typed with cents, and are rounded coarser.
_COARSE_CURRENCY_STEP = {"JPY": 100, "KRW": 1000, "CNY": 10, "MXN": 10}

# Which systems hold one real deal (first = where it was entered first) and how often.
_PRESENCE: list[tuple[tuple[int, ...], float]] = [
    ((0,), 0.30), ((1,), 0.22), ((2,), 0.16),
    ((0, 1), 0.10), ((1, 0), 0.06), ((0, 2), 0.03), ((2, 0), 0.02), ((1, 2), 0.02), ((2, 1), 0.02),
    ((0, 1, 2), 0.04), ((1, 0, 2), 0.02), ((2, 0, 1), 0.01),
]
_DUPLICATE_RATE = 0.035  # records entered twice in the same system
_MERGED_SHARE = 0.4  # of those duplicates, merged away since
_DELETED_RATE = 0.015
_BEHIND_RATE = 0.12  # copies in a secondary system nobody kept up to date
_MISPLACED_ZERO_RATE = 0.004
_MISSING_AMOUNT_RATE = 0.03
_EXTERNAL_REF_RATE = 0.45  # HubSpot copies of a Salesforce deal that carry its id
_DEALS_PER_COMPANY = 7.0
_ADVANCE = np.array([0.72, 0.74, 0.76, 0.8])  # P(reach next shared open stage | reached this one)
_DAY = 86_400
_CHUNK = 50_000


@dataclass(slots=True)
class _Pipeline:
    """A generated pipeline plus the lookups that place a deal on it."""

    system: int
    spec: PipelineSpec
    definition: PipelineDef
    ladder: list[int]  # stage indexes of the open, non-parked stages in order
    # stage index reached for (shared level 0..4, depth bucket 0..3)
    reach: list[list[int]]
    on_hold: int | None
    won: int | None
    lost: int | None


@dataclass(slots=True)
class _Lookups:
    pipelines: list[tuple]  # per pipeline: (_Pipeline, stage ids, language, lost reasons, next steps)
    templates: list[dict[str, list[str]]]  # per deal kind: name templates per language
    lead_spellings: list[list[str]]  # per lead source: its spelling per system
    anomaly_sets: list[tuple[str, ...]]  # per anomaly bit code
    company_names: list[tuple[str, str, str | None]]  # per company: Latin short name, native one, its language
    t_kind: list[int]
    t_company: list[int]
    t_owner: list[int]
    t_seats: list[int]
    t_product: list[int]
    t_year: list[int]
    truth_ids: list[str]


def generate(seed: int, size: int, *, as_of: datetime = DEFAULT_AS_OF, hard_cases: bool = False) -> World:
    """A world of exactly ``size`` deal records across the three CRMs, the same for the same arguments.

    ``hard_cases`` adds what breaks deduplication (``hard_cases.py``): sibling deals of one account told
    apart by one token, stale and dangling references, 15-character Salesforce ids, cross-script copies.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    # Millions of new objects, none in a reference cycle: the cyclic collector would only
    # rescan them again and again (it roughly doubles the run time), so it waits until we are done.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Generator(seed, size, as_of, hard_cases).run()
    finally:
        if was_enabled:
            gc.enable()


class _Generator:
    def __init__(self, seed: int, size: int, as_of: datetime, hard_cases: bool = False):
        self.seed, self.size, self.as_of, self.hard_cases = seed, size, as_of, hard_cases
        self.np = np.random.default_rng([seed, size])
        self.py = random.Random(f"pipesync-sandbox:{seed}:{size}")
        self.lex = names()
        self.maker = NameMaker(self.lex, self.py)
        self.now_s = int(as_of.timestamp())
        self.ids = ids.IdMaker(self.py)

    # ------------------------------------------------------------------ plan: which record is which deal

    def run(self) -> World:
        self.pipelines = self._pipelines()
        rec_truth, rec_system, rec_role, rec_dup_of, n_truth = self._plan()
        self._truths(n_truth)
        self._companies(n_truth)
        self._owners()
        self._accounts(rec_truth, rec_system)
        self._deals(rec_truth, rec_system, rec_role, rec_dup_of)
        world = self._assemble()
        if self.hard_cases:
            add_hard_cases(self, world)
        return world

    def _plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Records as (truth, system, role, duplicate-of), exactly ``size`` of them, grouped by truth."""
        mean_records = sum(len(p) * w for p, w in _PRESENCE) * (1 + _DUPLICATE_RATE)
        n_truth = math.ceil(self.size / mean_records) + 8
        weights = np.array([w for _, w in _PRESENCE]) / sum(w for _, w in _PRESENCE)
        table = np.full((len(_PRESENCE), 3), -1)
        for i, (systems, _) in enumerate(_PRESENCE):
            table[i, : len(systems)] = systems
        counts_of = (table >= 0).sum(axis=1)
        while True:
            pattern = self.np.choice(len(_PRESENCE), size=n_truth, p=weights)
            counts = counts_of[pattern]
            dups = self.np.random(int(counts.sum())) < _DUPLICATE_RATE
            if counts.sum() + dups.sum() >= self.size:
                break
            n_truth = int(n_truth * 1.05) + 8
        truth = np.repeat(np.arange(n_truth), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        position = np.arange(truth.size) - starts
        system = table[pattern[truth], position]
        role = np.where(position == 0, 0, 1)
        dup_index = np.flatnonzero(dups)
        all_truth = np.concatenate([truth, truth[dup_index]])
        all_system = np.concatenate([system, system[dup_index]])
        all_role = np.concatenate([role, np.full(dup_index.size, 2)])
        all_dup_of = np.concatenate([np.full(truth.size, -1), dup_index])
        order = np.lexsort((all_role, all_truth))[: self.size]
        # duplicates point at their original by its new position
        new_position = np.full(all_truth.size, -1)
        new_position[order] = np.arange(order.size)
        dup_of = all_dup_of[order]
        dup_of = np.where(dup_of >= 0, new_position[np.maximum(dup_of, 0)], -1)
        n_used = int(all_truth[order].max()) + 1
        return all_truth[order], all_system[order], all_role[order], dup_of, n_used

    # ------------------------------------------------------------------ the real deals

    def _truths(self, n: int) -> None:
        g, now = self.np, self.now_s
        kinds = list(self.lex.kinds)
        kind_w = np.array([self.lex.kinds[k].weight for k in kinds])
        self.kind_names = kinds
        self.t_kind = g.choice(len(kinds), size=n, p=kind_w / kind_w.sum())
        # more deals lately: a growing business
        age_days = 3 * 365 * g.beta(1.0, 1.6, size=n)
        self.t_created = (now - age_days * _DAY).astype(np.int64)
        cycle = np.clip(g.lognormal(math.log(55), 0.7, size=n), 5, 540)
        self.t_planned_close = self.t_created + (cycle * _DAY).astype(np.int64)
        level = np.zeros(n, dtype=np.int64)
        for step, p in enumerate(_ADVANCE):
            level += (level == step) & (g.random(n) < p)
        self.t_depth = g.integers(0, 4, size=n)
        overdue = self.t_planned_close < now
        long_overdue = self.t_planned_close < now - 14 * _DAY
        p_closed = np.where(long_overdue, 0.93, np.where(overdue, 0.5, 0.06))
        closed = g.random(n) < p_closed
        won = closed & (((level == 4) & (g.random(n) < 0.62)) | ((level == 3) & (g.random(n) < 0.12)))
        self.t_status = np.where(won, 1, np.where(closed, 2, 0))  # 0 open, 1 won, 2 lost
        # an open deal is only as far along as its time allows: that is what makes the open funnel a funnel
        elapsed = np.clip((now - self.t_created) / (self.t_planned_close - self.t_created), 0, 1)
        progress = np.floor(5 * elapsed * g.uniform(0.3, 1.0, size=n)).astype(np.int64)
        self.t_level = level = np.where(self.t_status == 0, np.minimum(level, progress), level)
        close_at = self.t_created + (cycle * g.uniform(0.6, 1.3, size=n) * _DAY).astype(np.int64)
        self.t_close_at = np.clip(close_at, self.t_created + _DAY, now - 3600)
        self.t_parked = (self.t_status == 0) & (g.random(n) < 0.1)
        stale = (self.t_status == 0) & ((overdue & (g.random(n) < 0.5)) | (g.random(n) < 0.08))
        self.t_stale = stale
        recent = now - (g.exponential(6, size=n) * _DAY).astype(np.int64)
        long_ago = now - (g.uniform(90, 400, size=n) * _DAY).astype(np.int64)
        activity = np.where(stale, long_ago, np.where(self.t_status == 0, recent, self.t_close_at))
        self.t_activity = np.maximum(activity, self.t_created + 600)
        medians = np.array([self.lex.kinds[k].median_usd for k in kinds])
        self.t_usd = medians[self.t_kind] * g.lognormal(0, 0.9, size=n)
        self.t_seats = np.array([5, 10, 20, 25, 50, 100, 250, 500])[g.integers(0, 8, size=n)]
        self.t_product = g.integers(0, len(self.lex.products), size=n)
        self.lead_source_names = list(self.lex.lead_sources)
        self.t_lead = g.integers(0, len(self.lead_source_names), size=n)
        self.lost_reason_names = list(self.lex.lost_reasons)
        self.t_lost = g.integers(0, len(self.lost_reason_names), size=n)
        self.t_template = g.integers(0, 1 << 30, size=n)

    def _companies(self, n_truth: int) -> None:
        n_companies = max(1, round(n_truth / _DEALS_PER_COMPANY))
        # a few big customers with many deals, a long tail with one or two
        popularity = self.np.lognormal(0, 1.1, size=n_companies)
        self.t_company = self.np.choice(n_companies, size=n_truth, p=popularity / popularity.sum())
        self.companies: list[Company] = []
        self.company_people: list[list[Person]] = []
        for c in range(n_companies):
            company = self.maker.company(f"C{c:07d}", self.maker.region())
            self.companies.append(company)
            group = self.lex.regions[company.region].people
            self.company_people.append([self.maker.person(group) for _ in range(1 + int(self.py.random() * 4))])

    def _owners(self) -> None:
        """The seller's sales team: real people with a user in some of the systems, spelled per system."""
        n_people = min(400, max(12, self.size // 2000))
        groups = ["en"] * 6 + ["de", "de", "es", "fr", "zh", "ko", "ja", "ar"]
        self.team = [self.maker.person(groups[int(self.py.random() * len(groups))]) for _ in range(n_people)]
        self.owners: list[list[Owner]] = [[], [], []]
        self.owner_of: list[dict[int, int]] = [{}, {}, {}]  # person -> index into owners[system]
        for p, person in enumerate(self.team):
            home = int(self.py.random() * 3)
            for s in range(3):
                if s != home and self.py.random() > 0.7:
                    continue
                name = person_name_variant(self.py, person, self.lex, canonical=(s == home))
                # most people have one mailbox naming style everywhere; some systems got another alias
                style = p if self.py.random() < 0.7 else p + s
                email = email_for(person, self.lex.seller_domain, style)
                self.owner_of[s][p] = len(self.owners[s])
                self.owners[s].append(Owner(self.ids.owner(s), name, email))
        for s in range(3):  # every system has somebody to own its deals
            if not self.owners[s]:
                person = self.team[0]
                self.owner_of[s][0] = 0
                self.owners[s].append(Owner(self.ids.owner(s), person.latin_name(),
                                            email_for(person, self.lex.seller_domain, 0)))
        self.t_owner = self.np.integers(0, n_people, size=len(self.t_kind))

    def _accounts(self, rec_truth: np.ndarray, rec_system: np.ndarray) -> None:
        """One account per company and system it has deals in, plus some duplicate accounts."""
        rec_company = self.t_company[rec_truth]
        pairs = np.unique(rec_company * 3 + rec_system)
        self.accounts: list[list[Account]] = [[], [], []]
        self.contacts: list[list[Contact]] = [[], [], []]
        self.account_of: dict[int, list[int]] = {}  # company*3+system -> account indexes (first = main)
        self.account_contacts: list[list[list[Contact]]] = [[], [], []]
        home: dict[int, int] = {}
        for key in pairs.tolist():
            c, s = divmod(key, 3)
            company = self.companies[c]
            canonical = home.setdefault(c, s) == s
            copies = 2 if self.py.random() < 0.04 else 1  # the same company entered twice
            for k in range(copies):
                account = Account(
                    id="", truth_id=company.truth_id,
                    name=account_name_variant(self.py, company, canonical and k == 0),
                    website=website_variant(self.py, company.domain), country=company.country,
                )
                self.account_of.setdefault(key, []).append(len(self.accounts[s]))
                self.accounts[s].append(account)
                people = [p for p in self.company_people[c] if self.py.random() < 0.8] or self.company_people[c][:1]
                # Salesforce keeps names as typed in the company's script; the others hold the Latin spelling
                native = s == 0
                contacts = [
                    Contact("", "", p.first if native else p.first_latin, p.last if native else p.last_latin,
                            email_for(p, company.domain, i))
                    for i, p in enumerate(people)
                ]
                self.contacts[s].extend(contacts)
                self.account_contacts[s].append(contacts)
        for s in range(3):  # ids last, in bulk
            for account, account_id in zip(self.accounts[s], self.ids.many(s, "account", len(self.accounts[s]))):
                account.id = account_id
            for account, contacts in zip(self.accounts[s], self.account_contacts[s]):
                for contact in contacts:
                    contact.account_id = account.id
            for contact, contact_id in zip(self.contacts[s], self.ids.many(s, "contact", len(self.contacts[s]))):
                contact.id = contact_id

    # ------------------------------------------------------------------ records

    def _deals(self, rec_truth: np.ndarray, rec_system: np.ndarray, rec_role: np.ndarray,
               rec_dup_of: np.ndarray) -> None:
        """Every deal record, with vendor ids, in ``self.in_creation_order`` (per system)."""
        g, n, now = self.np, rec_truth.size, self.now_s
        t = rec_truth
        secondary = rec_role > 0
        behind = (rec_role == 1) & (g.random(n) < _BEHIND_RATE)
        # a copy is entered a little later than the original
        lag = np.where(rec_role == 0, 0, g.exponential(4, size=n) * _DAY).astype(np.int64)
        created = np.minimum(self.t_created[t] + lag, now - 3600)
        pipeline = self._choose_pipelines(t, rec_system)
        status = np.where(behind, 0, self.t_status[t])
        level = np.where(behind & (self.t_status[t] == 0), np.maximum(self.t_level[t] - 1, 0), self.t_level[t])
        reach = np.array([[p.reach[lv][d] for lv in range(5) for d in range(4)] for p in self.pipelines])
        k = reach[pipeline, level * 4 + self.t_depth[t]]
        start = np.where(g.random(n) < 0.8, 0, np.minimum(1, k))
        # reps skip stages: each stage strictly between the first and the current one, one time in four
        between = (np.left_shift(1, k) - 1) & ~(np.left_shift(1, start + 1) - 1)
        skip = g.integers(0, 1 << 16, size=n) & g.integers(0, 1 << 16, size=n) & between
        revisit = (k - start >= 2) & (g.random(n) < 0.04)
        parked = (status == 0) & self.t_parked[t] & np.array([p.on_hold is not None for p in self.pipelines])[pipeline]
        has_close_stage = (status > 0) & (rec_system != 2)
        n_visits = k - start + 1 - np.bitwise_count(skip) + 2 * revisit + has_close_stage + parked
        closed_at = np.maximum(self.t_close_at[t], created + 3600)
        activity = np.where(behind & (self.t_status[t] > 0), closed_at, self.t_activity[t])
        activity = np.maximum(activity, created + 600)
        stale = (status == 0) & (self.t_stale[t] | (behind & (self.t_status[t] > 0)))
        open_end = created + ((np.minimum(activity, now) - created) * g.uniform(0.3, 1.0, size=n)).astype(np.int64)
        # Pipedrive keeps a closed deal in its last open stage, entered some time before the close
        before_close = created + ((closed_at - created) * g.uniform(0.5, 0.95, size=n)).astype(np.int64)
        end = np.where(status > 0, np.where(rec_system == 2, before_close, closed_at), open_end)
        updated = np.minimum(np.maximum(end, activity) + (g.exponential(1.5, size=n) * _DAY).astype(np.int64), now)
        has_activity = g.random(n) > 0.05
        close_day = np.where(status > 0, closed_at, self.t_planned_close[t]) // _DAY
        moved = secondary & (g.random(n) < 0.35)
        close_day = close_day + np.where(moved, g.integers(-60, 61, size=n), 0)
        amounts, currencies, misplaced = self._amounts(t, pipeline, secondary)
        deleted = g.random(n) < _DELETED_RATE
        merged = (rec_role == 2) & (g.random(n) < _MERGED_SHARE)
        gone_at = np.minimum(updated + (g.uniform(0, 1, size=n) * (now - updated)).astype(np.int64), now)
        recent_deletion = g.random(n) < 0.5  # half within Pipedrive's 30-day window
        gone_at = np.where(recent_deletion, np.maximum(now - (g.uniform(0, 29, size=n) * _DAY).astype(np.int64),
                                                       updated), gone_at)
        anomaly = misplaced * 1 + stale * 2 + behind * 4
        lead = np.where(g.random(n) < 0.12, -1, self.t_lead[t])
        lost = np.where((status == 2) & (g.random(n) < 0.75), self.t_lost[t], -1)
        next_step = np.where((status == 0) & (g.random(n) < 0.5), g.integers(0, 1 << 20, size=n), -1)
        english = g.random(n) < 0.2  # a team that types English into a localized pipeline
        template = self.t_template[t] + np.where(secondary, g.integers(0, 4, size=n), 0)
        slip = np.where(secondary & (g.random(n) < 0.08), 1, np.where(secondary & (g.random(n) < 0.04), 2, 0))
        other_owner = np.where((rec_role == 2) & (g.random(n) < 0.33), g.integers(0, 1 << 20, size=n), -1)
        columns = (
            t, rec_system, rec_role, pipeline, status, start, k, skip, revisit, parked, updated,
            np.where(has_activity, np.minimum(activity, now), -1), close_day, closed_at, amounts, currencies,
            anomaly, deleted | merged, gone_at, lead, lost, next_step, english, template, slip, other_owner,
            g.random(n) < 1 / 3, g.integers(0, 3, size=n),
        )
        deals: list[SeedDeal] = []
        lookups = self._lookups()
        # Python lists of a chunk at a time: a million records' worth at once would double the peak memory.
        for lo in range(0, n, _CHUNK):
            chunk = slice(lo, lo + _CHUNK)
            times = self._visit_times(created[chunk], end[chunk], n_visits[chunk]).tolist()
            deals.extend(self._build(lookups, times, *(c[chunk] if isinstance(c, list) else c[chunk].tolist()
                                                       for c in columns)))
        self._link(deals, created, rec_system, rec_dup_of.tolist(), merged.tolist(),
                   (g.random(n) < _EXTERNAL_REF_RATE).tolist())

    def _choose_pipelines(self, t: np.ndarray, system: np.ndarray) -> np.ndarray:
        """Per record, the pipeline its team uses: the region's own if there is one, else the default."""
        regions = list(self.lex.regions)
        region_of_company = np.array([regions.index(c.region) for c in self.companies])
        rec_region = region_of_company[self.t_company[t]]
        rec_kind = self.t_kind[t]
        choice = np.full(t.size, -1)
        roll = self.np.random(t.size)
        for s in range(3):
            own = [i for i, p in enumerate(self.pipelines) if p.system == s]
            default = next(i for i in own if "*" in self.pipelines[i].spec.regions and not self.pipelines[i].spec.kinds)
            choice = np.where((system == s) & (choice < 0), default, choice)
            for i in own:
                spec = self.pipelines[i].spec
                if spec.kinds:
                    kinds = [self.kind_names.index(k) for k in spec.kinds]
                    choice = np.where((system == s) & np.isin(rec_kind, kinds) & (roll < 0.8), i, choice)
                elif "*" not in spec.regions:
                    served = [regions.index(r) for r in spec.regions]
                    choice = np.where((system == s) & np.isin(rec_region, served) & (roll < 0.85), i, choice)
        return choice

    def _visit_times(self, created: np.ndarray, end: np.ndarray, n_visits: np.ndarray) -> np.ndarray:
        """Entry times of each record's stage visits: the first at creation, the last at ``end``, the rest between.

        Normalised sums of exponential spacings give sorted uniform points, all in one array operation.
        """
        width = int(n_visits.max())
        spacings = self.np.exponential(1.0, size=(created.size, width))
        cumulative = np.cumsum(spacings, axis=1)
        total = cumulative[np.arange(created.size), np.maximum(n_visits - 2, 0)]
        fractions = cumulative / total[:, None]
        times = np.empty((created.size, width), dtype=np.int64)
        times[:, 0] = created
        times[:, 1:] = created[:, None] + (fractions[:, : width - 1] * (end - created)[:, None]).astype(np.int64)
        return times

    def _amounts(self, t: np.ndarray, pipeline: np.ndarray, secondary: np.ndarray
                 ) -> tuple[list[Decimal | None], list[str], np.ndarray]:
        g, n = self.np, t.size
        currency_names = list(FX_TO_USD)
        fx = np.array([float(FX_TO_USD[c]) for c in currency_names])
        currency = np.zeros(n, dtype=np.int64)
        roll = g.random(n)
        for i, p in enumerate(self.pipelines):
            codes = list(p.spec.currencies)
            weights = np.cumsum([p.spec.currencies[c] for c in codes])
            weights /= weights[-1]
            picked = np.array([currency_names.index(c) for c in codes])[np.searchsorted(weights, roll)]
            currency = np.where(pipeline == i, picked, currency)
        drift = np.where(secondary & (g.random(n) < 0.3), g.uniform(0.85, 1.2, size=n), 1.0)
        local = self.t_usd[t] / fx[currency] * drift
        coarse = np.array([_COARSE_CURRENCY_STEP.get(c, 1) for c in currency_names])[currency]
        style = g.random(n)
        step = np.where(style < 0.7, 100, 1) * coarse
        whole = np.maximum(np.round(local / step) * step, step).astype(np.int64)
        cents = np.round(local * 100).astype(np.int64)
        with_cents = (style >= 0.95) & (coarse == 1)
        misplaced = g.random(n) < _MISPLACED_ZERO_RATE
        factor_up = g.random(n) < 0.7
        whole = np.where(misplaced, np.where(factor_up, whole * 10, np.maximum(whole // 10, 1)), whole)
        cents = np.where(misplaced, np.where(factor_up, cents * 10, np.maximum(cents // 10, 1)), cents)
        missing = g.random(n) < _MISSING_AMOUNT_RATE
        amounts: list[Decimal | None] = [
            None if miss else (Decimal(c).scaleb(-2) if wc else Decimal(w))
            for miss, wc, w, c in zip(missing.tolist(), with_cents.tolist(), whole.tolist(), cents.tolist())
        ]
        currencies = [currency_names[c] for c in currency.tolist()]
        return amounts, currencies, misplaced & ~missing

    def _lookups(self) -> _Lookups:
        """Everything the record loop looks up, computed once for all chunks."""
        lex = self.lex
        pipelines = []
        for p in self.pipelines:
            language = p.definition.language
            pipelines.append((
                p, [st.id for st in p.definition.stages], language,
                [lex.lost_reasons[r].get(language, lex.lost_reasons[r]["en"]) for r in self.lost_reason_names],
                lex.next_steps[language],
            ))
        script_language = {"zh": "zh", "ko": "ko", "ja": "ja", "ar": "ar"}
        return _Lookups(
            pipelines=pipelines,
            templates=[lex.kinds[k].names for k in self.kind_names],
            lead_spellings=[[lex.lead_sources[name][system] for system in SYSTEMS] for name in self.lead_source_names],
            anomaly_sets=[tuple(flag for bit, flag in enumerate(("misplaced_zero", "stale", "behind")) if code >> bit & 1)
                          for code in range(8)],
            company_names=[(c.short_name(False), c.short_name(True), script_language.get(c.style))
                           for c in self.companies],
            t_kind=self.t_kind.tolist(), t_company=self.t_company.tolist(), t_owner=self.t_owner.tolist(),
            t_seats=self.t_seats.tolist(), t_product=self.t_product.tolist(),
            t_year=(self.t_planned_close.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)
                    + 1970).tolist(),
            truth_ids=[f"T{t:07d}" for t in range(self.t_kind.size)],
        )

    def _build(self, lookups: _Lookups, visit_times: list[list[int]], *cols: list) -> list[SeedDeal]:
        """The records, from per-record columns; one flat loop because it runs a million times."""
        py, products = self.py, self.lex.products
        fromts = datetime.fromtimestamp
        day0 = date(1970, 1, 1).toordinal()
        dates: dict[int, date] = {}
        pipe_info, templates_of, lead_spellings = lookups.pipelines, lookups.templates, lookups.lead_spellings
        anomaly_sets, company_names = lookups.anomaly_sets, lookups.company_names
        t_kind, t_company, t_owner = lookups.t_kind, lookups.t_company, lookups.t_owner
        t_seats, t_product, t_year, truth_ids = lookups.t_seats, lookups.t_product, lookups.t_year, lookups.truth_ids
        owners_of, owner_index, account_of = self.owners, self.owner_of, self.account_of
        accounts_of, contacts_of = self.accounts, self.account_contacts
        roles = ("primary", "copy", "duplicate")
        statuses = ("open", "won", "lost")
        deals: list[SeedDeal] = []
        append = deals.append
        for (times, t, s, role, pi, status, start, k, skip, revisit, parked, updated, activity, close_day,
             closed_at, amount, currency, anomaly, deleted, gone_at, lead, lost, next_step, english, template,
             slip, other_owner, alt_account, n_contacts) in zip(visit_times, *cols):
            p, stage_ids, language, lost_texts, next_steps = pipe_info[pi]
            ladder = p.ladder
            if skip:
                path = [ladder[j] for j in range(start, k + 1) if not skip >> j & 1]
            else:
                path = ladder[start:k + 1]
            if revisit:
                path += [path[-2], path[-1]]
            if status and s != 2:
                path.append(p.won if status == 1 else p.lost)
            if parked:
                path.append(p.on_hold)
            history = [StageVisit(stage_ids[stage], fromts(at, UTC)) for stage, at in zip(path, times)]
            last_visit = history[-1]
            c = t_company[t]
            latin_name, native_name, company_language = company_names[c]
            if english:
                language = "en"
            templates = templates_of[t_kind[t]][language]
            year = t_year[t]
            name = templates[template % len(templates)].format(
                account=native_name if company_language == language else latin_name,
                product=products[t_product[t]], year=year, yy=year % 100, seats=t_seats[t])
            if slip == 1:
                name = typo(py, name)
            elif slip == 2:
                name = name.upper()
            owners = owners_of[s]
            person_owner = owner_index[s].get(t_owner[t])
            owner = owners[other_owner % len(owners) if other_owner >= 0 or person_owner is None else person_owner]
            slots = account_of[c * 3 + s]
            slot = slots[-1] if alt_account else slots[0]
            close_date = dates.get(close_day)
            if close_date is None:
                close_date = dates[close_day] = date.fromordinal(close_day + day0)
            closed = None
            if status:
                closed = last_visit.entered_at if s != 2 else fromts(closed_at, UTC)
            append(SeedDeal(
                "", SYSTEMS[s], truth_ids[t], p.definition.id, last_visit.stage_id, statuses[status], name,
                amount, currency, close_date, history[0].entered_at,
                last_visit.entered_at if updated <= times[len(path) - 1] else fromts(updated, UTC),
                None if activity < 0 else fromts(activity, UTC),
                owner.id, accounts_of[s][slot].id,
                [contact.id for contact in contacts_of[s][slot][:n_contacts]],
                None if lead < 0 else lead_spellings[lead][s],
                None if lost < 0 else lost_texts[lost],
                None if next_step < 0 else next_steps[next_step % len(next_steps)],
                history, None, deleted, fromts(gone_at, UTC) if deleted else None, None, closed,
                roles[role], anomaly_sets[anomaly],
            ))
        return deals

    def _link(self, deals: list[SeedDeal], created: np.ndarray, rec_system: np.ndarray, dup_of: list[int],
              merged: list[bool], with_ref: list[bool]) -> None:
        """Vendor ids in creation order per system, then the references that need them."""
        self.in_creation_order: list[list[SeedDeal]] = []
        for s in range(3):
            order = np.flatnonzero(rec_system == s)
            order = order[np.argsort(created[order], kind="stable")].tolist()
            mine = [deals[i] for i in order]
            for deal, deal_id in zip(mine, self.ids.many(s, "deal", len(mine))):
                deal.id = deal_id
            self.in_creation_order.append(mine)
        first_sf: dict[str, str] = {}
        for deal in deals:
            if deal.system == "salesforce" and deal.role != "duplicate":
                first_sf.setdefault(deal.truth_id, deal.id)
        for deal, original, was_merged, ref in zip(deals, dup_of, merged, with_ref):
            if was_merged and original >= 0:
                deal.merged_into = deals[original].id
            if ref and deal.system == "hubspot" and deal.truth_id in first_sf:
                deal.external_ref = f"salesforce:{first_sf[deal.truth_id]}"

    # ------------------------------------------------------------------ catalog and assembly

    def _pipelines(self) -> list[_Pipeline]:
        result = []
        cat = catalog()
        for s, system in enumerate(SYSTEMS):
            for spec in getattr(cat, system):
                stages = [
                    StageDef(
                        id=self.ids.stage(s, st.id, st.label), label=st.label, order=order,
                        probability=st.probability, is_closed=st.shared in ("closed_won", "closed_lost"),
                        is_won=st.shared == "closed_won", shared=st.shared, rot_days=st.rot_days,
                    )
                    for order, st in enumerate(spec.stages)
                ]
                definition = PipelineDef(self.ids.pipeline(s, spec.id), spec.label, spec.language, stages)
                ladder = [i for i, st in enumerate(stages) if st.shared in SHARED_OPEN]
                ranks = [SHARED_OPEN.index(stages[i].shared) for i in ladder]
                reach = []
                for level in range(5):
                    at_level = [pos for pos, r in enumerate(ranks) if r == level]
                    below = [pos for pos, r in enumerate(ranks) if r < level]
                    row = []
                    for depth in range(4):
                        if at_level:
                            row.append(at_level[depth * len(at_level) // 4])
                        else:
                            row.append(below[-1] if below else 0)
                    reach.append(row)
                by_shared = {st.shared: i for i, st in enumerate(stages)}
                result.append(_Pipeline(s, spec, definition, ladder, reach, by_shared.get("on_hold"),
                                        by_shared.get("closed_won"), by_shared.get("closed_lost")))
        return result

    def _assemble(self) -> World:
        world = World(seed=self.seed, size=self.size, as_of=self.as_of)
        for s, system in enumerate(SYSTEMS):
            world.systems[system] = SystemData(
                system=system,
                pipelines=[p.definition for p in self.pipelines if p.system == s],
                owners=self.owners[s],
                accounts=self.accounts[s],
                contacts=self.contacts[s],
                deals=self.in_creation_order[s],
            )
        return world


# ---------------------------------------------------------------------- ground truth out of a world

LABEL_COLUMNS = ("deal_key", "truth_id", "account_truth_id", "role", "anomalies")


def write_labels(world: World, path: str | Path) -> int:
    """Write the ground-truth clusters (docs/sandbox.md, "Labels file"); returns the number of rows.

    One row per deal record of every system, deleted and merged-away ones
    included: ``deal_key`` ("<system>:<id>", the default source names) and the
    ``truth_id`` of the real deal it stands for; records sharing a truth_id are
    one cluster.
    """
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(LABEL_COLUMNS)
        for system, data in world.systems.items():
            account_truth = {a.id: a.truth_id for a in data.accounts}
            for d in data.deals:
                out.writerow((f"{system}:{d.id}", d.truth_id, account_truth[d.account_id], d.role,
                              ";".join(d.anomalies)))
                rows += 1
    return rows


def canonical_deals(world: World, reporting_currency: str = "USD") -> Iterator[Deal]:
    """Every record of the world as the canonical Deal a perfect sync and mapping would produce.

    Stages come from the ground truth (``StageDef.shared``); Pipedrive's won/lost
    status wins over its stage, as the mapping rules do. ``amount_reporting`` uses
    :data:`FX_TO_USD`. Built with ``Deal.model_construct`` (no validation): the
    world is valid by construction and benchmarks need a million of these fast.
    """
    if reporting_currency not in FX_TO_USD:
        raise ValueError(f"no fixed rate for {reporting_currency}; known: {', '.join(FX_TO_USD)}")
    to_reporting = {c: rate / FX_TO_USD[reporting_currency] for c, rate in FX_TO_USD.items()}
    cent = Decimal("0.01")
    closed_stage = {"won": ("closed_won", 1.0), "lost": ("closed_lost", 0.0)}
    for system, data in world.systems.items():
        stages = {(p.id, s.id): s for p in data.pipelines for s in p.stages}
        owners = {o.id: o for o in data.owners}
        accounts = {a.id: a for a in data.accounts}
        emails = {c.id: c.email for c in data.contacts}
        for d in data.deals:
            stage_def = stages[(d.pipeline_id, d.stage_id)]
            stage, probability = closed_stage.get(d.status, (stage_def.shared, stage_def.probability))
            owner, account = owners[d.owner_id], accounts[d.account_id]
            yield Deal.model_construct(
                source=system, source_id=d.id, name=d.name, pipeline=d.pipeline_id, source_stage=d.stage_id,
                stage=stage, status=Category(d.status), amount=d.amount, currency=d.currency,
                amount_reporting=None if d.amount is None else (d.amount * to_reporting[d.currency]).quantize(cent),
                probability=probability, close_date=d.close_date, created_at=d.created_at,
                updated_at=d.updated_at,
                stage_entered_at=d.closed_at if d.status != "open" and d.closed_at else d.history[-1].entered_at,
                last_activity_at=d.last_activity_at, owner_email=owner.email, owner_name=owner.name,
                account_name=account.name, account_domain=domain_of(account.website),
                contact_emails=[emails[c] for c in d.contact_ids], lead_source=d.lead_source,
                lost_reason=d.lost_reason, next_step=d.next_step,
                external_refs=[d.external_ref] if d.external_ref else [], is_deleted=d.is_deleted, raw={},
            )


def world_summary(world: World) -> dict[str, object]:
    """Counts that say what a world holds: per system, and across systems for the ground truth."""
    systems_of: dict[str, list[str]] = {}
    per_system: dict[str, dict[str, int]] = {}
    for system, data in world.systems.items():
        per_system[system] = {
            "deals": len(data.deals), "accounts": len(data.accounts), "contacts": len(data.contacts),
            "owners": len(data.owners), "pipelines": len(data.pipelines),
            "open": sum(d.status == "open" for d in data.deals),
            "deleted": sum(d.is_deleted and not d.merged_into for d in data.deals),
            "merged_away": sum(d.merged_into is not None for d in data.deals),
        }
        for d in data.deals:
            systems_of.setdefault(d.truth_id, []).append(system)
    return {
        "seed": world.seed, "size": world.size, "as_of": world.as_of.isoformat() if world.as_of else None,
        "systems": per_system,
        "real_deals": len(systems_of),
        "in_two_or_more_systems": sum(len(set(s)) > 1 for s in systems_of.values()),
        "in_all_three_systems": sum(len(set(s)) == 3 for s in systems_of.values()),
        "duplicated_within_a_system": sum(len(s) > len(set(s)) for s in systems_of.values()),
    }
