"""The cases that break deduplication, added to a generated world: ``generate(seed, size, hard_cases=True)``.

What an outside noise model does and the plain world does not:

- **hard negatives inside one account**: two *different* deals of one customer
  told apart by one token only — the yearly renewal ("Renewal FY24" /
  "Renewal 2025"), a seat tier (+50 / +60 seats), a phase (1 / II), a regional
  roll-out (EMEA / ANZ) closing the same quarter, two products renewing at
  nearly the same amount — with amounts, dates, owner and account alike;
- **stale references**: this year's renewal cloned from last year's in
  HubSpot, still carrying last year's Salesforce id; **dangling references**
  (~1%) to a Salesforce deal that does not exist; Salesforce ids written in
  their 15-character form (reports export them so) about half the time;
- **cross-script copies**: a customer held in its own script in Salesforce
  (Chinese, Japanese, Korean, Arabic, Russian, Hebrew, Greek; legal forms
  before or after the name: (주), 株式会社, ООО «…», ذ.م.م, בע"מ) and in Latin
  letters elsewhere, romanised by more than one scheme, deal words translated,
  and, as in real exports, mostly without a website or contacts to share.

Every record touched says so in its ``anomalies`` (``hard_negative:<family>``,
``stale_ref``, ``dangling_ref``, ``sf15_ref``, ``cross_script``), written to the
labels file, so a benchmark can break its errors down by class.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pipesync_sandbox import ids
from pipesync_sandbox.world import SeedDeal, World

if TYPE_CHECKING:
    from pipesync_sandbox.generator import _Generator

FAMILIES = ("year", "seats", "phase", "region", "product")
HARD_NEGATIVE_SHARE = 0.10  # of the real deals, made one half of a hard-negative pair
STALE_REF_SHARE = 0.5  # of the year family: the clone carries last year's id
DANGLING_REF_RATE = 0.01
SF15_RATE = 0.5
CROSS_SCRIPT_SHARE = 0.12  # of Latin-script companies with deals in Salesforce and elsewhere
NO_SHARED_KEYS_RATE = 0.7  # cross-script accounts without website, their deals without contacts

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
_YEAR_FORMS = ("{y}", "FY{yy:02d}", "FY{y}", "'{yy:02d}", "FY {yy:02d}")
_SEAT_FORMS = ("+{n} seats", "{n} seats", "({n} users)", "+{n} licences")
_PHASE_FORMS = ("Phase {d}", "Phase {r}", "Ph. {d}", "phase {r}")
_REGION_FORMS = ("{g} roll-out", "{g} rollout", "Rollout {g}")
_PRODUCT_FORMS = ("{p} renewal", "Renewal - {p}", "{p} Renewal")
_REGIONS = ("EMEA", "ANZ", "APAC", "LATAM", "DACH", "Nordics", "North America", "Benelux")
_FAMILY_WORD = {"year": "Renewal", "seats": "Expansion", "phase": "Implementation", "region": "", "product": ""}

# Brand syllables per script: (native, romanisation by one scheme, by another)
_SYLLABLES: dict[str, list[tuple[str, ...]]] = {
    "zh": [("中", "zhong", "chung"), ("信", "xin", "hsin"), ("华", "hua", "hua"), ("泰", "tai", "tai"),
           ("祥", "xiang", "hsiang"), ("达", "da", "ta"), ("建", "jian", "chien"), ("远", "yuan", "yuan"),
           ("锦", "jin", "chin"), ("和", "he", "ho"), ("丰", "feng", "feng"), ("瑞", "rui", "jui")],
    "ja": [("ト", "to", "to"), ("シ", "shi", "si"), ("チ", "chi", "ti"), ("ツ", "tsu", "tu"), ("フ", "fu", "hu"),
           ("ジ", "ji", "zi"), ("サ", "sa", "sa"), ("ノ", "no", "no"), ("ミ", "mi", "mi"), ("カ", "ka", "ka"),
           ("ワ", "wa", "wa"), ("リ", "ri", "ri")],
    "ko": [("한", "han", "han"), ("빛", "bit", "pit"), ("성", "seong", "song"), ("진", "jin", "chin"),
           ("대", "dae", "tae"), ("현", "hyeon", "hyon"), ("정", "jeong", "chong"), ("미", "mi", "mi"),
           ("래", "rae", "rae"), ("동", "dong", "tong"), ("원", "won", "won"), ("경", "gyeong", "kyong")],
    "ru": [("Ро", "Ro", "Ro"), ("Жу", "Zhu", "Ju"), ("Хи", "Khi", "Hi"), ("Це", "Tse", "Ce"), ("Юн", "Yun", "Jun"),
           ("Вол", "Vol", "Wol"), ("Щит", "Shchit", "Schit"), ("Ска", "Ska", "Ska"), ("Лен", "Len", "Len"),
           ("Ник", "Nik", "Nik"), ("Яр", "Yar", "Jar"), ("Сиб", "Sib", "Sib")],
    "el": [("Αθη", "Athi", "Athe"), ("Χρυ", "Chry", "Hri"), ("Φω", "Fo", "Pho"), ("Ελ", "El", "El"),
           ("Νι", "Ni", "Ni"), ("Κυ", "Ky", "Ki"), ("Ολ", "Ol", "Ol"), ("Μα", "Ma", "Ma"), ("Ζε", "Ze", "Ze"),
           ("Θα", "Tha", "Tha"), ("Βη", "Vi", "Vi"), ("Δε", "De", "Dhe")],
    "he": [("אור", "Or", "Ohr"), ("גל", "Gal", "Gal"), ("שחר", "Shachar", "Shahar"), ("טל", "Tal", "Tal"),
           ("כרמל", "Carmel", "Karmel"), ("נוף", "Nof", "Noff"), ("ים", "Yam", "Iam"), ("ארז", "Erez", "Eres"),
           ("רון", "Ron", "Ron"), ("זיו", "Ziv", "Ziw"), ("עדן", "Eden", "Aden"), ("הר", "Har", "Har")],
    "ar": [("النور", "Al Noor", "Al-Nur"), ("الأمل", "Al Amal", "Al-Amal"), ("الفجر", "Al Fajr", "Al-Fajer"),
           ("الرواد", "Al Rowad", "Al-Ruwad"), ("الخليج", "Al Khaleej", "Al-Khalij"), ("السلام", "Al Salam", "As-Salam"),
           ("الريان", "Al Rayan", "Al-Rayyan"), ("الواحة", "Al Waha", "Al-Wahah")],
}
# joined without a space in these scripts (the second syllable of an Arabic brand is a second word)
_UNSPACED = {"zh", "ja", "ko"}
_NATIVE_LEGAL = {
    "zh": ["{b}有限公司", "{b}股份有限公司"], "ja": ["株式会社{b}", "{b}株式会社", "(株){b}"],
    "ko": ["(주){b}", "{b} 주식회사", "주식회사 {b}"], "ru": ["ООО «{b}»", "АО «{b}»", "{b} ООО"],
    "el": ["{b} Α.Ε.", "{b} Ε.Π.Ε."], "he": ['{b} בע"מ'], "ar": ["{b} ذ.م.م", "شركة {b} ذ.م.م"],
}
_LATIN_LEGAL = {
    "zh": ["{b} Co., Ltd.", "{b} Limited", "{b}"], "ja": ["{b} K.K.", "{b} Co., Ltd.", "{b} Kabushiki Kaisha"],
    "ko": ["{b} Co., Ltd.", "{b} Corp.", "{b} Inc."], "ru": ["{b} LLC", "OOO {b}", "{b} GmbH"],
    "el": ["{b} S.A.", "{b} A.E."], "he": ["{b} Ltd.", "{b} Ltd"], "ar": ["{b} LLC", "{b} L.L.C."],
}
# deal kinds in the customer's language: translated, not transliterated
_KIND_WORDS = {
    "new_business": {"zh": "新签", "ja": "新規", "ko": "신규", "ru": "новая сделка", "el": "νέα συμφωνία",
                     "he": "עסקה חדשה", "ar": "صفقة جديدة", "en": "New Business"},
    "renewal": {"zh": "续约", "ja": "契約更新", "ko": "갱신", "ru": "продление", "el": "ανανέωση", "he": "חידוש",
                "ar": "تجديد", "en": "Renewal"},
    "expansion": {"zh": "扩容", "ja": "追加導入", "ko": "확장", "ru": "расширение", "el": "επέκταση", "he": "הרחבה",
                  "ar": "توسعة", "en": "Expansion"},
    "pilot": {"zh": "试点", "ja": "実証", "ko": "파일럿", "ru": "пилот", "el": "πιλοτικό", "he": "פיילוט",
              "ar": "مشروع تجريبي", "en": "Pilot"},
    "services": {"zh": "实施服务", "ja": "導入支援", "ko": "구축", "ru": "внедрение", "el": "υλοποίηση",
                 "he": "הטמעה", "ar": "خدمات التنفيذ", "en": "Implementation"},
    "partner": {"zh": "渠道", "ja": "パートナー経由", "ko": "파트너", "ru": "через партнёра", "el": "μέσω συνεργάτη",
                "he": "דרך שותף", "ar": "عبر الشريك", "en": "Partner deal"},
}


def add_hard_cases(generator: _Generator, world: World) -> None:
    """Turns a share of ``world``'s deals into the hard cases above, deterministically for the generator's seed."""
    rng = random.Random(f"pipesync-sandbox-hard:{generator.seed}:{generator.size}")
    deals = [d for data in world.systems.values() for d in data.deals]
    by_truth: dict[str, list[SeedDeal]] = defaultdict(list)
    for d in deals:
        by_truth[d.truth_id].append(d)
    accounts = {a.id: a for data in world.systems.values() for a in data.accounts}
    _cross_script(generator, world, rng, by_truth, accounts)
    _hard_negatives(generator, world, rng, by_truth, accounts)
    _references(world, rng, deals)


def _truth_index(truth_id: str) -> int:
    return int(truth_id[1:])


def _hard_negatives(generator: _Generator, world: World, rng: random.Random, by_truth: dict[str, list[SeedDeal]],
                    accounts: dict) -> None:
    by_company: dict[int, list[str]] = defaultdict(list)
    for truth, records in by_truth.items():
        if not any("cross_script" in d.anomalies for d in records):
            by_company[int(generator.t_company[_truth_index(truth)])].append(truth)
    wanted = int(HARD_NEGATIVE_SHARE * len(by_truth) / 2)
    companies = [c for c, truths in by_company.items() if len(truths) >= 2]
    rng.shuffle(companies)
    made = 0
    for c in companies:
        truths = by_company[c]
        rng.shuffle(truths)
        while len(truths) >= 2 and made < wanted:
            x, y = truths.pop(), truths.pop()
            _pair(generator, world, rng, FAMILIES[made % len(FAMILIES)], by_truth[x], by_truth[y], accounts)
            made += 1
            if rng.random() < 0.5:
                break  # the rest of this account's deals stay as they were
        if made >= wanted:
            return


def _pair(generator: _Generator, world: World, rng: random.Random, family: str, xs: list[SeedDeal],
          ys: list[SeedDeal], accounts: dict) -> None:
    """Makes deal ``ys`` a sibling of deal ``xs``: alike in all but one distinguishing token."""
    x0 = xs[0]
    year = x0.close_date.year
    products = generator.lex.products
    match family:
        case "year":
            a, b = year - 1, year
            form = lambda v: rng.choice(_YEAR_FORMS).format(y=v, yy=v % 100)  # noqa: E731
        case "seats":
            a = rng.choice((10, 20, 25, 50, 100))
            b = a + rng.choice((5, 10, 25))
            form = lambda v: rng.choice(_SEAT_FORMS).format(n=v)  # noqa: E731
        case "phase":
            a = rng.choice((1, 2, 3))
            b = a + 1
            form = lambda v: rng.choice(_PHASE_FORMS).format(d=v, r=_ROMAN[v])  # noqa: E731
        case "region":
            a, b = rng.sample(_REGIONS, 2)
            form = lambda v: rng.choice(_REGION_FORMS).format(g=v)  # noqa: E731
        case _:
            a, b = rng.sample(products, 2)
            form = lambda v: rng.choice(_PRODUCT_FORMS).format(p=v)  # noqa: E731
    word = _FAMILY_WORD[family]
    product = rng.choice(products) if family in ("seats", "phase", "region") else ""
    tag = f"hard_negative:{family}"
    for records, value in ((xs, a), (ys, b)):
        for d in records:
            brand = _brand_of(accounts[d.account_id].name)
            parts = [brand, "-", product, word, form(value)] if rng.random() < 0.5 else [brand, form(value), product, word]
            d.name = " ".join(p for p in parts if p)
            d.anomalies = (*d.anomalies, tag)
    # alike in everything else: amount within 3%, close date within three weeks, entered within days, same owner
    x_owner = {d.system: d.owner_id for d in xs}
    shift = (x0.created_at + timedelta(days=rng.uniform(0, 5))) - ys[0].created_at
    if max(_instants(d)[-1] for d in ys) + shift > (world.as_of or x0.created_at):
        shift = timedelta(0)
    for d in ys:
        if x0.amount is not None and d.currency == x0.currency:
            d.amount = (x0.amount * Decimal(str(round(rng.uniform(0.97, 1.03), 3)))).quantize(Decimal(1))
        d.close_date = x0.close_date + timedelta(days=rng.randint(-20, 20))
        d.owner_id = x_owner.get(d.system, d.owner_id)
        if shift:
            _shift(d, shift)
    if family == "year" and rng.random() < STALE_REF_SHARE:
        # this year's renewal cloned in HubSpot from last year's, still naming last year's Salesforce deal
        old = next((d for d in xs if d.system == "salesforce"), None)
        for d in ys:
            if old is not None and d.system == "hubspot":
                d.external_ref = f"salesforce:{old.id}"
                d.anomalies = (*d.anomalies, "stale_ref")


def _brand_of(account_name: str) -> str:
    return account_name.split(",")[0].split(" ")[0]


def _instants(d: SeedDeal) -> list:
    return sorted(t for t in (d.created_at, d.updated_at, d.last_activity_at, d.closed_at, d.deleted_at) if t)


def _shift(d: SeedDeal, by: timedelta) -> None:
    d.created_at += by
    d.updated_at += by
    if d.last_activity_at:
        d.last_activity_at += by
    if d.closed_at:
        d.closed_at += by
    if d.deleted_at:
        d.deleted_at += by
    for visit in d.history:
        visit.entered_at += by


def _cross_script(generator: _Generator, world: World, rng: random.Random, by_truth: dict[str, list[SeedDeal]],
                  accounts: dict) -> None:
    """Latin-script customers re-made as customers of another script, held natively in Salesforce."""
    truths_of: dict[int, list[str]] = defaultdict(list)
    for truth in by_truth:
        truths_of[int(generator.t_company[_truth_index(truth)])].append(truth)
    scripts = sorted(_SYLLABLES)
    for c, truths in truths_of.items():
        company = generator.companies[c]
        systems = {d.system for t in truths for d in by_truth[t]}
        if company.style != "latin" or "salesforce" not in systems or len(systems) < 2:
            continue
        if rng.random() >= CROSS_SCRIPT_SHARE:
            continue
        script = rng.choice(scripts)
        syllables = rng.sample(_SYLLABLES[script], 2)
        glue = "" if script in _UNSPACED else " " if script == "ar" else ""
        native = glue.join(s[0] for s in syllables)
        schemes = [glue.join(s[k] for s in syllables) for k in (1, 2)]
        schemes = [s if script == "ar" else s.capitalize() for s in schemes]
        bare = rng.random() < NO_SHARED_KEYS_RATE
        account_ids = {d.account_id for t in truths for d in by_truth[t]}
        for account_id in account_ids:
            account = accounts[account_id]
            system = next(d.system for t in truths for d in by_truth[t] if d.account_id == account_id)
            if system == "salesforce":
                account.name = rng.choice(_NATIVE_LEGAL[script]).format(b=native)
            else:
                account.name = rng.choice(_LATIN_LEGAL[script]).format(b=rng.choice(schemes))
            if bare:
                account.website = None
        for t in truths:
            index = _truth_index(t)
            kind = generator.kind_names[int(generator.t_kind[index])]
            extra = _extra(generator, kind, index)
            for d in by_truth[t]:
                if d.system == "salesforce":
                    d.name = " ".join(p for p in (native, _KIND_WORDS[kind][script], extra) if p)
                else:
                    d.name = " ".join(p for p in (rng.choice(schemes), "-", _KIND_WORDS[kind]["en"], extra) if p)
                if bare:
                    d.contact_ids = []
                d.anomalies = (*d.anomalies, "cross_script")


def _extra(generator: _Generator, kind: str, index: int) -> str:
    """What a name says beyond its kind: the year of a renewal, the seats of an expansion, else the product."""
    if kind == "renewal":
        return str(int(generator.t_planned_close[index] // (365.25 * 86400)) + 1970)
    if kind == "expansion":
        return f"+{int(generator.t_seats[index])}"
    return generator.lex.products[int(generator.t_product[index])]


def _references(world: World, rng: random.Random, deals: list[SeedDeal]) -> None:
    """Dangling references, and Salesforce ids in their 15-character form."""
    for d in deals:
        if d.system != "hubspot":
            continue
        if d.external_ref is None and rng.random() < DANGLING_REF_RATE:
            # a Salesforce deal deleted long ago, or in another org
            d.external_ref = "salesforce:" + ids.salesforce_id("006", 10**12 + int(rng.random() * 10**9))
            d.anomalies = (*d.anomalies, "dangling_ref")
        if d.external_ref and d.external_ref.startswith("salesforce:") and rng.random() < SF15_RATE:
            d.external_ref = d.external_ref[:len("salesforce:") + 15]
            d.anomalies = (*d.anomalies, "sf15_ref")
