"""RawDeal + the source's mapping → canonical :class:`Deal`, or a reason it can't be.

Adapters hand over canonical field names with the source's values; this module
parses them (text or already typed), maps the stage through the mapping file,
settles the status and converts the amount into the reporting currency. The
first field that cannot be read raises :class:`NormalizationError`, which the
sync turns into a quarantine row naming the record and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson

from pipesync.currency import FxTable
from pipesync.errors import NormalizationError
from pipesync.mapping import Mapping, fold
from pipesync.model import Category, Deal, RawDeal, SharedPipeline
from pipesync.parsing import (
    domain_of,
    parse_amount,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_email,
    parse_probability,
    split_list,
)

TEXT_FIELDS = ("name", "owner_name", "account_name", "lead_source", "lost_reason", "next_step")
INSTANT_FIELDS = ("created_at", "updated_at", "stage_entered_at", "last_activity_at")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str | None:
    return None if _blank(v) else str(v).strip()


def _strip(v: Any) -> str:
    return str(v).strip()


def _probability(v: Any) -> float:
    return v if isinstance(v, float) and v <= 1 else parse_probability(str(v))


class Normalizer:
    """Normalizes one source's records; built once per source per run."""

    def __init__(self, source: str, mapping: Mapping, pipeline: SharedPipeline, fx: FxTable, mapping_name: str):
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
        self._status_words = {fold(w): Category(c) for c in ("open", "won", "lost") for w in getattr(p.status, c)}
        self._category = {s.key: s.category for s in pipeline.stages}
        self._parsers: dict[str, Callable[[Any], Any]] = {
            **{f: _strip for f in TEXT_FIELDS},
            **{f: self._instant for f in INSTANT_FIELDS},
            "probability": _probability,
            "close_date": self._date,
            "owner_email": lambda x: parse_email(str(x)),
            "account_domain": lambda x: domain_of(str(x)),
            "contact_emails": self._emails,
            "external_refs": lambda x: list(x) if isinstance(x, (list, tuple)) else split_list(str(x)),
            "is_deleted": lambda x: x if isinstance(x, bool) else parse_bool(str(x)),
        }
        self._first = {c: next(s.key for s in pipeline.stages if s.category is c) for c in (Category.WON, Category.LOST)}
        # Exports repeat a handful of stages, status words and currencies across every row:
        # each distinct value is looked up (folded, matched against the mapping) once per run.
        self._stages: dict[tuple[str | None, str], str] = {}
        self._statuses: dict[str, Category] = {}
        self._currencies: dict[str, str] = {}
        # Everything besides the record that decides its canonical form: when neither the record
        # nor this changed, the stored deal is still right and normalizing again can be skipped.
        self._fingerprint = orjson.dumps(
            [source, mapping.model_dump(mode="json"), pipeline.model_dump(mode="json"), fx.reporting, sorted(map(str, fx.rates.items()))]
        )

    def content_hash(self, raw: RawDeal) -> str:
        """A digest of the record as read plus the rules that normalize it (``deals.content_hash``)."""
        h = hashlib.blake2b(self._fingerprint, digest_size=16)
        h.update(orjson.dumps([raw.source_id, raw.values, raw.raw, raw.problem], default=str, option=orjson.OPT_SORT_KEYS))
        return h.hexdigest()

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
        return parse_date(str(v), self._order, self._formats)

    def _instant(self, v: Any) -> datetime:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("timestamp without timezone")
            return v
        if isinstance(v, (int, float)):  # epoch milliseconds, as HubSpot writes them
            return datetime.fromtimestamp(v / 1000, tz=timezone.utc)
        return parse_datetime(str(v), self._tz, self._order, self._formats)

    def _emails(self, v: Any) -> list[str]:
        items = v if isinstance(v, (list, tuple)) else split_list(str(v))
        out = []
        for item in items:
            try:
                out.append(parse_email(str(item)))
            except ValueError:
                continue  # a malformed contact email does not make the deal unreadable; raw keeps it
        return sorted(set(out))

    def _stage(self, pipeline: str | None, source_stage: str | None) -> str:
        if source_stage is None:
            raise NormalizationError("source_stage", "the record has no stage")
        found = self._stages.get((pipeline, source_stage))
        if found is None:
            found = self._stages[(pipeline, source_stage)] = self._find_stage(pipeline, source_stage)
        return found

    def _find_stage(self, pipeline: str | None, source_stage: str) -> str:
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
        text = str(v)
        c = self._statuses.get(text)
        if c is None:
            c = self._status_words.get(fold(text))
            if c is None:
                raise ValueError("unknown status word: add it under parse.status in the mapping file")
            self._statuses[text] = c
        return c

    def _currency(self, v: Any) -> str:
        text = str(v)
        code = self._currencies.get(text)
        if code is None:
            code = self._currencies[text] = self.fx.check_code(text)
        return code

    # -- the record ---------------------------------------------------------------------------

    def normalize(self, raw: RawDeal) -> Deal:
        if raw.problem is not None:
            raise NormalizationError(*raw.problem)
        v = raw.values
        source_id = _text(raw.source_id if raw.source_id is not None else v.get("source_id"))
        if source_id is None:
            raise NormalizationError("source_id", "the record has no id")
        pipeline = _text(v.get("pipeline"))
        source_stage = _text(v.get("source_stage"))
        stage = self._stage(pipeline, source_stage)
        status = self._category[stage]
        reported = self._field("status", v.get("status"), self._status)
        if reported is not None and reported is not Category.OPEN and reported is not status:
            # Won/lost come from the record's status where the source keeps one (Pipedrive):
            # the deal keeps its source stage, and lands on the shared won/lost stage.
            status, stage = reported, self._first[reported]

        amount, currency = None, None
        if not _blank(v.get("amount")):
            raw_amount = v["amount"]
            if isinstance(raw_amount, (Decimal, int)):
                amount = Decimal(raw_amount)
            elif isinstance(raw_amount, float):
                amount = Decimal(repr(raw_amount))
            else:
                amount, currency = self._field(
                    "amount", raw_amount, lambda x: parse_amount(str(x), self._decimal, self._default_currency)
                )
        explicit = self._field("currency", v.get("currency"), self._currency)
        if explicit and currency and explicit != currency:
            raise NormalizationError("currency", f"column says {explicit} but the amount is written in {currency}")
        currency = explicit or currency or (self._default_currency if amount is not None else None)
        amount_reporting = None
        if amount is not None:
            currency = self._field("currency", currency, self._currency)
            amount_reporting = self._field("currency", currency, lambda c: self.fx.to_reporting(amount, c))

        return Deal(
            source=self.source,
            source_id=source_id,
            pipeline=pipeline,
            source_stage=source_stage,
            stage=stage,
            status=status,
            amount=amount,
            currency=currency,
            amount_reporting=amount_reporting,
            raw=raw.raw,
            **self._optional(v),
        )

    def _optional(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every other field the record has, parsed; blanks are left to the model's defaults."""
        out = {}
        parsers = self._parsers
        for f, x in values.items():
            parse = parsers.get(f)
            if parse is None or x is None or (isinstance(x, str) and not x.strip()):  # _blank, inlined: hot loop
                continue
            try:
                out[f] = parse(x)
            except (ValueError, ArithmeticError) as e:
                raise NormalizationError(f, str(e), x) from None
        return out
