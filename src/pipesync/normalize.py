"""RawDeal + the source's mapping → canonical :class:`Deal`, or a reason it can't be.

Adapters hand over canonical field names with the source's values; this module
parses them (text or already typed), maps the stage through the mapping file,
settles the status and converts the amount into the reporting currency. The
first field that cannot be read makes a :class:`NormalizationError`, which the
sync turns into a quarantine row naming the record and the field. A value that is
only partly readable where the rest still makes a good deal (one malformed address
in a list of contact e-mails) is a :class:`PartlyRead`: the deal keeps what could be
read and the sync counts what was dropped.

A sync normalizes a page of records at a time, field by field across the page:
exports repeat the same dates, stages, owners and currencies on every row, so
most of a column is answered from the values already seen at list speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic_core import PydanticUndefined
from xxhash import xxh3_64_intdigest, xxh3_128_hexdigest

from pipesync.currency import FxTable
from pipesync.vocabulary import VALUE_FIELDS, Vocabularies, load_vocabularies
from pipesync.errors import NormalizationError
from pipesync.mapping import Mapping, fold
from pipesync.model import INSTANT_FIELDS, Category, Deal, RawDeal, SharedPipeline, SheetNumber
from pipesync.parsing import (
    domain_of,
    parse_amount,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_day,
    parse_email,
    parse_probability,
    serial_datetime,
    split_list,
)

TEXT_FIELDS = ("name", "owner_name", "account_name", "lead_source", "lost_reason", "next_step")
CORE_FIELDS = (
    "source", "source_id", "pipeline", "source_stage", "stage", "status", "amount", "currency", "amount_reporting", "raw",
)
MEMO_LIMIT = 100_000  # distinct texts remembered per field
_BLANKS = {None: None, "": None}
_NO_CORE = (None,) * len(CORE_FIELDS)  # a failed record's place among the core fields


class PartlyRead(ValueError):
    """Raised by a parser that read part of a value: ``kept`` is the part, the message says what was dropped."""

    def __init__(self, reason: str, kept: Any, dropped: Any):
        super().__init__(reason)
        self.kept = kept
        self.dropped = dropped


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str | None:
    return None if _blank(v) else str(v).strip()


def _strip(v: Any) -> str:
    return str(v).strip()


def _probability(v: Any) -> float:
    if isinstance(v, float) and 0 <= v <= 1:
        return v
    return parse_probability(str(v))


def _refs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else split_list(str(v))


# What a blank field becomes where the model's default is not None: a fresh list for each deal, "", False.
_DEFAULTS: dict[str, Callable[[], Any]] = {
    name: f.default_factory or (lambda value=f.default: value)  # type: ignore[misc]
    for name, f in Deal.model_fields.items()
    if f.default_factory is not None or (f.default is not None and f.default is not PydanticUndefined)
}


@dataclass(slots=True)
class NormalizedPage:
    """A page of records normalized field by field: a column of values per Deal field, and the failures.

    Sync writes the columns as they are (building a Deal per record and taking it apart again
    cost as much as normalizing it); :meth:`result` gives one record as a Deal. A failed
    record's place in the columns holds nothing meaningful.
    """

    columns: dict[str, Sequence[Any]]  # every Deal field, in CORE_FIELDS then parser order
    errors: dict[int, NormalizationError]  # record index → why it could not be normalized
    # record index → the first value left out of a deal that was kept (field, reason, what was dropped)
    dropped: dict[int, NormalizationError]

    def __len__(self) -> int:
        return len(self.columns["source"])

    def result(self, i: int) -> Deal | NormalizationError:
        if i in self.errors:
            return self.errors[i]
        # Every value is parsed and checked already: validating it again would repeat this module's work.
        return Deal.model_construct(set(self.columns), **{field: column[i] for field, column in self.columns.items()})


class Normalizer:
    """Normalizes one source's records; built once per source per run."""

    def __init__(
        self, source: str, mapping: Mapping, pipeline: SharedPipeline, fx: FxTable, mapping_name: str,
        vocabularies: Vocabularies | None = None,
    ):
        self.source = source
        self.mapping = mapping
        self.pipeline = pipeline
        self.fx = fx
        self.mapping_name = mapping_name
        p = mapping.parse
        self._order = p.date_order
        self._formats = tuple(p.date_formats)
        self._tz = p.timezone
        self._decimal = p.decimal_separator
        self._default_currency = p.default_currency or fx.reporting
        self._blank_amount_currency = p.default_currency  # a guess of the reporting currency would be no fact
        self._credits = p.negative_amounts == "accept"
        self._status_words = {fold(w): Category(c) for c in ("open", "won", "lost") for w in getattr(p.status, c)}
        self._category = {s.key: s.category for s in pipeline.stages}
        self._parsers: dict[str, Callable[[Any], Any]] = {
            **{f: _strip for f in TEXT_FIELDS},
            **{f: self._instant for f in INSTANT_FIELDS},
            "probability": _probability,
            "close_date": self._date,
            "actual_close_date": self._day,
            "owner_email": lambda x: parse_email(str(x)),
            "account_domain": lambda x: domain_of(str(x)),
            "contact_emails": self._emails,
            "external_refs": _refs,
            "is_deleted": lambda x: x if isinstance(x, bool) else parse_bool(str(x)),
        }
        # Parsers whose result depends on the text alone and whose texts repeat across records
        # (dates, timestamps, owners, domains, flags): each distinct text is parsed once per run.
        self._memos: dict[str, dict[Any, Any]] = {
            f: dict(_BLANKS) for f in (*INSTANT_FIELDS, "probability", "close_date", "actual_close_date", "owner_email", "account_domain", "is_deleted")
        }
        self._first = {c: next(s.key for s in pipeline.stages if s.category is c) for c in (Category.WON, Category.LOST)}
        # Exports repeat a handful of (pipeline, stage, status) and currency combinations on every
        # row: each distinct one is settled (folded, matched against the mapping) once per run.
        self._placements: dict[tuple[Any, Any, Any], tuple[str | None, str | None, str, Category]] = {}
        self._currencies_of: dict[tuple[Any, str | None, bool], str] = {}
        # Lost reasons and lead sources the mapping places in a shared vocabulary: folded value → its label.
        vocabularies = vocabularies or load_vocabularies()
        self._shared = {
            field: {value: vocabularies.of(field)[key].label for value, key in mapping.value_map(field).items()
                    if key is not None and key in vocabularies.of(field)}
            for field in VALUE_FIELDS
        }
        self._shared_seen: dict[str, dict[str | None, str | None]] = {field: {} for field in self._shared}
        self._owners = {fold(k): v for k, v in mapping.owners.items()}
        # Everything besides the record that decides its canonical form: when neither the record
        # nor this changed, the stored deal is still right and normalizing again can be skipped.
        # (hashed once: it seeds each record's hash)
        self._rules_seed = xxh3_64_intdigest(orjson.dumps(
            [source, mapping.model_dump(mode="json"), pipeline.model_dump(mode="json"), fx.reporting, sorted(map(str, fx.rates.items())),
             self._shared]
        ))

    def content_hashes(self, raws: Sequence[RawDeal]) -> list[str]:
        """A digest of each record as read plus the rules that normalize it (``deals.content_hash``)."""
        dumps, digest, seed, sort = orjson.dumps, xxh3_128_hexdigest, self._rules_seed, orjson.OPT_SORT_KEYS
        return [digest(dumps([r.source_id, r.values, r.raw, r.problem], default=str, option=sort), seed=seed) for r in raws]

    # -- one field at a time, each failure naming the field ------------------------------------

    def _field(self, field: str, value: Any, parse: Callable[[Any], Any]) -> Any:
        if _blank(value):
            return None
        try:
            return parse(value)
        except (ValueError, ArithmeticError) as e:
            raise NormalizationError(field, str(e), value) from None

    def _date(self, v: Any) -> date:
        if isinstance(v, datetime):
            raise ValueError("expected a calendar date, got a timestamp")  # adapters pass .date() deliberately
        if isinstance(v, date):
            return v
        if v.__class__ is SheetNumber:  # a number in a date column of a workbook: a serial day
            return serial_datetime(v).date()
        return parse_date(str(v), self._order, self._formats)

    def _day(self, v: Any) -> date:
        """The calendar day something happened, in the source's timezone: a date as it is, a timestamp's day there."""
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("timestamp without timezone")
            return v.astimezone(ZoneInfo(self._tz)).date()
        if isinstance(v, date):
            return v
        return parse_day(str(v), self._tz, self._order, self._formats)

    def _instant(self, v: Any) -> datetime:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("timestamp without timezone")
            return v if v.tzinfo is timezone.utc else v.astimezone(timezone.utc)
        if isinstance(v, (int, float)):  # epoch milliseconds, as HubSpot writes them
            return datetime.fromtimestamp(v / 1000, tz=timezone.utc)
        if v.__class__ is SheetNumber:  # a serial date-time, in the source's zone like any written without one
            return parse_datetime(serial_datetime(v).isoformat(), self._tz)
        return parse_datetime(str(v), self._tz, self._order, self._formats)

    def _emails(self, v: Any) -> list[str]:
        items = v if isinstance(v, (list, tuple)) else split_list(str(v))
        out, bad = [], []
        for item in items:
            try:
                out.append(parse_email(str(item)))
            except ValueError:
                bad.append(str(item))
        if bad:
            # A malformed contact e-mail does not make the deal unreadable: it is dropped and counted; raw keeps it.
            raise PartlyRead(f"{len(bad)} malformed address(es) dropped", sorted(set(out)), ", ".join(bad))
        return sorted(set(out))

    def _stage(self, pipeline: str | None, source_stage: str | None) -> str:
        if source_stage is None:
            raise NormalizationError("source_stage", "the record has no stage")
        rule = self.mapping.find_stage(pipeline, source_stage)
        where = f" of pipeline {pipeline!r}" if pipeline else ""
        if rule is None:
            raise NormalizationError(
                "source_stage",
                f"stage {source_stage!r}{where} is not in {self.mapping_name}: "
                f"add it (pipesync map {self.source}) or fix the value",
            )
        if rule.stage is None:
            raise NormalizationError(
                "source_stage", f"stage {source_stage!r}{where} is not mapped yet in {self.mapping_name}"
            )
        return rule.stage

    def shared_stage(self, pipeline: str | None, source_stage: str) -> str | None:
        """The shared stage key a source stage maps to, or None when the mapping has no decision for it."""
        rule = self.mapping.find_stage(pipeline, source_stage)
        return None if rule is None else rule.stage

    def _status(self, v: Any) -> Category:
        c = self._status_words.get(fold(str(v)))
        if c is None:
            raise ValueError("unknown status word: add it under parse.status in the mapping file")
        return c

    def _currency(self, v: Any) -> str:
        return self.fx.check_code(str(v))

    # -- the records ---------------------------------------------------------------------------

    def normalize(self, raw: RawDeal) -> Deal:
        """One record's canonical deal; raises :class:`NormalizationError` naming the field it failed on."""
        result = self.normalize_page([raw]).result(0)
        if isinstance(result, NormalizationError):
            raise result
        return result

    def normalize_page(self, raws: Sequence[RawDeal]) -> NormalizedPage:
        """Each record's canonical fields, column by column, and the error of the first field each failed record failed on."""
        errors: dict[int, NormalizationError] = {}
        dropped: dict[int, NormalizationError] = {}
        core = []
        for i, raw in enumerate(raws):
            try:
                core.append(self._core(raw))
            except NormalizationError as e:
                errors[i] = e
                core.append(_NO_CORE)
        columns: dict[str, Sequence[Any]] = dict(zip(CORE_FIELDS, zip(*core))) if core else {f: () for f in CORE_FIELDS}
        values = [raw.values for raw in raws]
        for field, parse in self._parsers.items():
            columns[field] = self._column(field, [v.get(field) for v in values], parse, errors, dropped)
        # An open deal has not closed, whatever a column says (a reopened deal's old won time, a
        # Close Date that closes a deal only once it is closed).
        columns["actual_close_date"] = [
            None if status is Category.OPEN else day for status, day in zip(columns["status"], columns["actual_close_date"])
        ]
        for field, shared in self._shared.items():
            if shared:
                seen = self._shared_seen[field]  # exports repeat a few values: each is folded once
                if len(seen) >= MEMO_LIMIT:
                    seen.clear()  # free text (a reason typed per deal): memory stays bounded
                for x in set(columns[field]).difference(seen):
                    seen[x] = None if x is None else shared.get(fold(x), x)
                columns[field] = list(map(seen.__getitem__, columns[field]))
        if self._owners:
            owners, names = self._owners, columns["owner_name"]
            columns["owner_name"] = [
                owners.get(fold(e or "")) or owners.get(fold(n or "")) or n for e, n in zip(columns["owner_email"], names)
            ]
        return NormalizedPage(columns, errors, dropped)

    def _column(
        self, field: str, column: list[Any], parse: Callable[[Any], Any], errors: dict[int, NormalizationError],
        dropped: dict[int, NormalizationError],
    ) -> list[Any]:
        """One field of every record of a page, parsed; blanks are None. Failures go to ``errors``,
        values read in part to ``dropped`` (the first per record wins)."""
        memo = self._memos.get(field)
        if parse is _strip:
            out = [x.strip() or None if x.__class__ is str else None if x is None else str(x).strip() or None for x in column]
        else:
            try:
                out = [memo[x] for x in column]  # type: ignore[index]  # every text seen before: the usual case
            except (KeyError, TypeError):
                out = self._parse_each(field, column, parse, memo, errors, dropped)
        default = _DEFAULTS.get(field)
        if default is not None:
            out = [default() if x is None else x for x in out]
        return out

    @staticmethod
    def _parse_each(
        field: str, column: list[Any], parse: Callable[[Any], Any], memo: dict[Any, Any] | None,
        errors: dict[int, NormalizationError], dropped: dict[int, NormalizationError],
    ) -> list[Any]:
        out: list[Any] = [None] * len(column)
        for i, x in enumerate(column):
            if x is None or (x.__class__ is str and not x.strip()):
                continue
            try:
                value = out[i] = parse(x)
            except PartlyRead as e:
                out[i] = e.kept
                dropped.setdefault(i, NormalizationError(field, str(e), e.dropped))
                continue
            except (ValueError, ArithmeticError) as e:
                errors.setdefault(i, NormalizationError(field, str(e), x))
                continue
            if memo is not None and x.__class__ is str:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()  # many distinct values (timestamps to the second): memory stays bounded
                    memo.update(_BLANKS)
                memo[x] = value
        return out

    def _core(self, raw: RawDeal) -> tuple[Any, ...]:
        """The fields every deal has and that depend on each other (``CORE_FIELDS``): id, stage, status, amount…"""
        if raw.problem is not None:
            raise NormalizationError(*raw.problem)
        v = raw.values
        source_id = _text(raw.source_id if raw.source_id is not None else v.get("source_id"))
        if source_id is None:
            raise NormalizationError("source_id", "the record has no id")
        written = (v.get("pipeline"), v.get("source_stage"), v.get("status"))
        placed = self._placements.get(written)
        if placed is None:
            placed = self._placements[written] = self._place(*written)
        pipeline, source_stage, stage, status = placed

        amount, currency = None, None
        raw_amount = v.get("amount")
        if isinstance(raw_amount, (Decimal, int)):
            amount = Decimal(raw_amount)
        elif isinstance(raw_amount, float):
            amount = Decimal(repr(raw_amount))
        elif raw_amount.__class__ is SheetNumber:  # a workbook's number: exact, whatever the decimal separator
            amount = Decimal(raw_amount)
        elif raw_amount is not None and not (text := str(raw_amount)).isspace() and text:
            try:
                amount, currency = parse_amount(text, self._decimal, self._default_currency)
            except (ValueError, ArithmeticError) as e:
                raise NormalizationError("amount", str(e), raw_amount) from None
        if amount is not None and amount < 0 and not self._credits:
            raise NormalizationError(
                "amount", f"negative_amount: a credit or refund? set parse.negative_amounts: accept in "
                          f"{self.mapping_name} if this source holds them", raw_amount,
            )
        written_currency = (v.get("currency"), currency, amount is not None)
        currency = self._currencies_of.get(written_currency)
        if currency is None:
            currency = self._currencies_of[written_currency] = self._settle_currency(*written_currency)
        amount_reporting = None
        if amount is not None:
            try:
                amount_reporting = self.fx.to_reporting(amount, currency)
            except (ValueError, ArithmeticError) as e:
                raise NormalizationError("currency", str(e), currency) from None
        return (
            self.source, source_id, pipeline, source_stage, stage, status, amount, currency or None, amount_reporting, raw.raw,
        )

    def _place(self, pipeline: Any, source_stage: Any, status_word: Any) -> tuple[str | None, str | None, str, Category]:
        """(pipeline, source stage, shared stage, status) of a record, from the three as written."""
        pipeline, source_stage = _text(pipeline), _text(source_stage)
        stage = self._stage(pipeline, source_stage)
        status = self._category[stage]
        reported = self._field("status", status_word, self._status)
        if reported is not None and reported is not Category.OPEN and reported is not status:
            # Won/lost come from the record's status where the source keeps one (Pipedrive):
            # the deal keeps its source stage, and lands on the shared won/lost stage.
            status, stage = reported, self._first[reported]
        return pipeline, source_stage, stage, status

    def _settle_currency(self, column: Any, in_amount: str | None, has_amount: bool) -> str:
        """The deal's currency code ("" for none) from its currency column and the amount's own symbol."""
        explicit = self._field("currency", column, self._currency)
        if explicit and in_amount and explicit != in_amount:
            raise NormalizationError("currency", f"column says {explicit} but the amount is written in {in_amount}")
        # A blank amount keeps the currency the deal is in (a later amount will be in it).
        currency = explicit or in_amount or (self._default_currency if has_amount else self._blank_amount_currency)
        if currency:
            currency = self._field("currency", currency, self._currency)
        return currency or ""
