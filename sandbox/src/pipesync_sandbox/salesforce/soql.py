"""The SOQL subset the Salesforce sandbox understands: parse, check against the org's schema, evaluate.

Covers what an integration sends: ``SELECT`` field lists with relationship
paths (``Account.Name``, ``Owner.Email``) and parent-child subqueries
(``(SELECT Contact.Email FROM OpportunityContactRoles)``), ``SELECT COUNT()``, ``WHERE`` with
``AND``/``OR``/``NOT`` and parentheses, ``= != <> < > <= >= IN NOT IN LIKE``,
typed literals (quoted strings with SOQL escapes, numbers, ``true``/``false``/
``null``, unquoted ISO dates and datetimes, relative date literals such as
``TODAY`` or ``LAST_N_DAYS:30`` in UTC days), ``ORDER BY`` (several keys,
``ASC``/``DESC``, ``NULLS FIRST``/``LAST``), ``LIMIT`` and ``OFFSET``.

Semantics follow Salesforce, not SQL: text comparisons and ordering ignore
case; ``!=`` and ``NOT IN`` match null values; an unquoted datetime literal
carries its own offset and is compared in UTC. Errors carry Salesforce's error
codes and its message layout (the offending line, a caret, ``ERROR at
Row:r:Column:c``), so a client sees what the real API would tell it.

Rows are plain dicts of the values the REST API returns: datetimes already as
``2024-05-07T22:07:19.000+0000`` (UTC, so they order as strings), dates as
``YYYY-MM-DD``, numbers as floats. Literals are converted to that
representation once, at compile time, so evaluation is plain comparisons.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

Row = dict[str, Any]
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

ID_PATTERN = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")  # a 15- or 18-character record id
TEXT_TYPES = frozenset({"string", "picklist", "textarea", "url", "email", "phone", "combobox"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str  # Salesforce describe type: id, reference, string, picklist, currency, date, datetime, boolean …
    label: str
    reference_to: str | None = None
    relationship: str | None = None  # e.g. "Account" for AccountId
    length: int = 0
    createable: bool = False
    updateable: bool = False
    nillable: bool = True
    external_id: bool = False


@dataclass(slots=True)
class ObjectDef:
    name: str
    label: str
    key_prefix: str
    fields: dict[str, FieldDef]
    # child relationship name (e.g. "OpportunityContactRoles") → (child object, its reference field)
    children: dict[str, tuple[str, str]] = field(default_factory=dict)
    _by_lower: dict[str, FieldDef] = field(init=False, repr=False)
    _relationships: dict[str, FieldDef] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self._relationships = {f.relationship.lower(): f for f in self.fields.values() if f.relationship}

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self._relationships.get(name.lower())

    def child(self, name: str) -> tuple[str, tuple[str, str]] | None:
        """(canonical name, (child object, reference field)) of a child relationship."""
        return next(((n, c) for n, c in self.children.items() if n.lower() == name.lower()), None)


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is its errorCode, ``message`` its text."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _located(code: str, text: str, query: str, pos: int) -> SoqlError:
    """An error in Salesforce's layout: the offending line, a caret under the column, then the text."""
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    row = query.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    return SoqlError(code, f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{text}")


# ---------------------------------------------------------------- tokens

@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # IDENT, STRING, NUMBER, DATETIME, DATE, OP, PUNCT, EOF
    text: str  # the source text (for STRING: the unescaped value)
    pos: int


_STRING_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b",
                   "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}
# \% and \_ stay escaped in the value: they only mean something to LIKE.
_LIKE_ONLY_ESCAPES = frozenset("%_")

_SCANNER = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
    |(?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),:])
    |(?P<quote>')
    """,
    re.VERBOSE,
)


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        m = _SCANNER.match(query, pos)
        if m is None:
            raise _located("MALFORMED_QUERY", f"unexpected token: '{query[pos]}'", query, pos)
        kind = m.lastgroup
        if kind == "quote":
            value, pos = _scan_string(query, pos)
            tokens.append(Token("STRING", value, m.start()))
            continue
        if kind != "ws":
            tokens.append(Token(kind.upper(), m.group(), m.start()))
        pos = m.end()
    tokens.append(Token("EOF", "<EOF>", len(query)))
    return tokens


def _scan_string(query: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    pos = start + 1
    while pos < len(query):
        ch = query[pos]
        if ch == "'":
            return "".join(out), pos + 1
        if ch == "\\":
            nxt = query[pos + 1 : pos + 2]
            if nxt in _STRING_ESCAPES:
                out.append(_STRING_ESCAPES[nxt])
            elif nxt in _LIKE_ONLY_ESCAPES:
                out.append("\\" + nxt)
            else:
                raise _located(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{query[start:pos + 2]}'. Illegal character sequence '\\{nxt}' in string literal.",
                    query, pos)
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise _located("MALFORMED_QUERY", f"line 1:{start} mismatched character '<EOF>' expecting '''", query, start)


# ---------------------------------------------------------------- syntax tree

@dataclass(frozen=True, slots=True)
class FieldRef:
    path: str  # as written, e.g. "account.name"
    pos: int


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # STRING, NUMBER, DATETIME, DATE, BOOLEAN, NULL
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldRef
    op: str  # = != < > <= >= IN NOT IN LIKE
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND, OR, NOT
    operands: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    fields: tuple[FieldRef, ...]  # empty for COUNT()
    subqueries: tuple[Query, ...]  # parent-child: (SELECT … FROM <child relationship>), FROM naming it
    count_only: bool
    sobject: str
    sobject_pos: int
    where: Any  # Comparison | BoolOp | None
    order_by: tuple[OrderKey, ...]
    limit: int | None
    offset: int


_RESERVED = frozenset({"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "limit",
                       "offset", "asc", "desc", "nulls", "first", "last", "null", "true", "false", "group",
                       "having", "with", "for", "includes", "excludes"})


class _Parser:
    def __init__(self, query: str):
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _is_kw(self, *words: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.text.lower() in words

    def _unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.tok
        return _located("MALFORMED_QUERY", f"unexpected token: '{token.text}'", self.query, token.pos)

    def _expect_kw(self, word: str) -> Token:
        if not self._is_kw(word):
            raise self._unexpected()
        return self._next()

    def _expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "PUNCT" and self.tok.text == ch):
            raise self._unexpected()
        return self._next()

    def _field(self) -> FieldRef:
        token = self.tok
        if token.kind != "IDENT" or token.text.lower() in _RESERVED:
            raise self._unexpected()
        self._next()
        return FieldRef(token.text, token.pos)

    def _int(self) -> int:
        token = self._next()
        if token.kind != "NUMBER" or not token.text.isdigit():
            raise self._unexpected(token)
        return int(token.text)

    def parse(self, *, nested: bool = False) -> Query:
        self._expect_kw("select")
        fields: list[FieldRef] = []
        subqueries: list[Query] = []
        count_only = False
        if self._is_kw("count") and self.tokens[self.i + 1].text == "(":
            self.i += 2
            self._expect_punct(")")
            count_only = True
        else:
            self._select_item(fields, subqueries, nested)
            while self.tok.kind == "PUNCT" and self.tok.text == ",":
                self._next()
                self._select_item(fields, subqueries, nested)
        self._expect_kw("from")
        sobject = self.tok
        if sobject.kind != "IDENT" or "." in sobject.text or sobject.text.lower() in _RESERVED:
            raise self._unexpected()
        self._next()
        where = None
        if self._is_kw("where"):
            self._next()
            where = self._or()
        order_by: list[OrderKey] = []
        if self._is_kw("order"):
            self._next()
            self._expect_kw("by")
            order_by.append(self._order_key())
            while self.tok.kind == "PUNCT" and self.tok.text == ",":
                self._next()
                order_by.append(self._order_key())
        limit = None
        if self._is_kw("limit"):
            self._next()
            limit = self._int()
        offset = 0
        if self._is_kw("offset"):
            self._next()
            offset_token = self.tok
            offset = self._int()
            if offset > 2000:
                raise _located("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000",
                               self.query, offset_token.pos)
        if self.tok.kind != ("PUNCT" if nested else "EOF") or (nested and self.tok.text != ")"):
            raise self._unexpected()
        return Query(self.query, tuple(fields), tuple(subqueries), count_only, sobject.text, sobject.pos, where,
                     tuple(order_by), limit, offset)

    def _select_item(self, fields: list[FieldRef], subqueries: list[Query], nested: bool) -> None:
        if self.tok.kind == "PUNCT" and self.tok.text == "(" and not nested:
            self._next()
            subqueries.append(self.parse(nested=True))
            self._expect_punct(")")
            return
        fields.append(self._field())

    def _order_key(self) -> OrderKey:
        ref = self._field()
        descending = False
        if self._is_kw("asc", "desc"):
            descending = self._next().text.lower() == "desc"
        nulls_last = descending  # Salesforce's default: ASC NULLS FIRST, DESC NULLS LAST
        if self._is_kw("nulls"):
            self._next()
            if not self._is_kw("first", "last"):
                raise self._unexpected()
            nulls_last = self._next().text.lower() == "last"
        return OrderKey(ref, descending, nulls_last)

    def _or(self) -> Any:
        return self._chain("or", self._and)

    def _and(self) -> Any:
        return self._chain("and", self._not)

    def _chain(self, keyword: str, operand: Callable[[], Any]) -> Any:
        """``operand (keyword operand)*``; AND binds tighter than OR, as in SOQL."""
        operands = [operand()]
        while self._is_kw(keyword):
            self._next()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else BoolOp(keyword.upper(), tuple(operands))

    def _not(self) -> Any:
        if self._is_kw("not"):
            self._next()
            return BoolOp("NOT", (self._not(),))
        if self.tok.kind == "PUNCT" and self.tok.text == "(":
            self._next()
            inner = self._or()
            self._expect_punct(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        ref = self._field()
        if self.tok.kind == "OP":
            op = self._next().text
            return Comparison(ref, "!=" if op == "<>" else op, (self._literal(),))
        if self._is_kw("like"):
            self._next()
            return Comparison(ref, "LIKE", (self._literal(),))
        negated = False
        if self._is_kw("not"):
            self._next()
            negated = True
        if self._is_kw("in"):
            self._next()
            self._expect_punct("(")
            values = [self._literal()]
            while self.tok.kind == "PUNCT" and self.tok.text == ",":
                self._next()
                values.append(self._literal())
            self._expect_punct(")")
            return Comparison(ref, "NOT IN" if negated else "IN", tuple(values))
        raise self._unexpected()

    def _literal(self) -> Literal:
        token = self._next()
        if token.kind in ("STRING", "DATETIME", "DATE"):
            return Literal(token.kind, token.text, token.pos)
        if token.kind == "NUMBER":
            return Literal("NUMBER", float(token.text), token.pos)
        if token.kind == "IDENT" and token.text.lower() in ("true", "false"):
            return Literal("BOOLEAN", token.text.lower() == "true", token.pos)
        if token.kind == "IDENT" and token.text.lower() == "null":
            return Literal("NULL", None, token.pos)
        if token.kind == "IDENT" and token.text.upper() in _FIXED_DATE_LITERALS:
            return Literal("DATE_LITERAL", (token.text.upper(), 0), token.pos)
        if token.kind == "IDENT" and token.text.upper() in _N_DATE_LITERALS:
            self._expect_punct(":")
            return Literal("DATE_LITERAL", (token.text.upper(), self._int()), token.pos)
        raise self._unexpected(token)


def parse(query: str) -> Query:
    """Parse a SOQL query; raises :class:`SoqlError` (MALFORMED_QUERY …) like Salesforce would."""
    return _Parser(query).parse()


# ---------------------------------------------------------------- compile against the schema

def format_datetime(value: datetime) -> str:
    """A datetime as the REST API returns it: UTC, milliseconds, ``+0000``."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "+0000"


def parse_datetime_literal(text: str) -> datetime:
    """An unquoted SOQL datetime literal (``Z`` or ``±hh:mm`` offset) as an aware datetime.

    Fractional seconds may have any number of digits (tap-salesforce sends six); Salesforce keeps
    milliseconds, so the rest is dropped."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Column:
    """One selected field: where it comes from and where it goes in the rendered record."""

    path: tuple[str, ...]  # canonical names: relationship names, then the field, e.g. ("Account", "Name")
    objects: tuple[str, ...]  # the sObject type at each step: ("Opportunity", "Account")
    field: FieldDef
    get: Getter


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    query: Query
    sobject: ObjectDef
    columns: tuple[Column, ...]
    predicate: Predicate | None
    sort_keys: tuple[tuple[Getter, bool, bool], ...]  # (key, descending, nulls_last)
    # Every matching row has these datetime fields at or after these values (from a top-level
    # ``>``/``>=`` conjunct), so an index on them can narrow the rows the predicate must see.
    lower_bounds: tuple[tuple[str, str], ...] = ()
    children: tuple[ChildQuery, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildQuery:
    """A parent-child subquery: the child rows whose ``reference`` field holds the parent's Id."""

    relationship: str  # canonical child relationship name, the key of the nested result
    reference: str
    query: CompiledQuery


Tables = Mapping[str, Mapping[str, Row]]


class _Compiler:
    def __init__(self, query: Query, schema: Mapping[str, ObjectDef], tables: Tables, today: date):
        self.query = query
        self.schema = schema
        self.tables = tables
        self.today = today

    def compile(self) -> CompiledQuery:
        sobject = self._object(self.query.sobject)
        if sobject is None:
            raise _located(
                "INVALID_TYPE",
                f"sObject type '{self.query.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
                self.query.text, self.query.sobject_pos)
        columns: list[Column] = []
        seen: set[tuple[str, ...]] = set()
        for ref in self.query.fields:
            column = self._column(sobject, ref)
            key = tuple(p.lower() for p in column.path)
            if key in seen:
                raise _located("INVALID_FIELD", f"duplicate field selected: {ref.path}", self.query.text, ref.pos)
            seen.add(key)
            columns.append(column)
        predicate = self._predicate(sobject, self.query.where) if self.query.where is not None else None
        sort_keys = []
        for key in self.query.order_by:
            column = self._column(sobject, key.field)
            sort_keys.append((_sort_getter(column), key.descending, key.nulls_last))
        return CompiledQuery(self.query, sobject, tuple(columns), predicate, tuple(sort_keys),
                             self._lower_bounds(sobject, self.query.where),
                             tuple(self._child(sobject, sub) for sub in self.query.subqueries))

    def _child(self, sobject: ObjectDef, sub: Query) -> ChildQuery:
        found = sobject.child(sub.sobject)
        if found is None:
            raise _located(
                "INVALID_TYPE",
                f"Didn't understand relationship '{sub.sobject}' in FROM part of query call. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom relationship name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
                self.query.text, sub.sobject_pos)
        name, (child_object, reference) = found
        compiled = _Compiler(replace(sub, sobject=child_object), self.schema, self.tables, self.today).compile()
        return ChildQuery(name, reference, compiled)

    def _lower_bounds(self, sobject: ObjectDef, node: Any) -> tuple[tuple[str, str], ...]:
        conjuncts = node.operands if isinstance(node, BoolOp) and node.op == "AND" else (node,)
        bounds = []
        for conjunct in conjuncts:
            if isinstance(conjunct, Comparison) and conjunct.op in (">", ">=") and "." not in conjunct.field.path:
                fdef = sobject.field(conjunct.field.path)
                if fdef is not None and fdef.type == "datetime" and conjunct.values[0].kind == "DATETIME":
                    bounds.append((fdef.name, format_datetime(parse_datetime_literal(conjunct.values[0].value))))
        return tuple(bounds)

    def _object(self, name: str) -> ObjectDef | None:
        for candidate in self.schema.values():
            if candidate.name.lower() == name.lower():
                return candidate
        return None

    def _column(self, sobject: ObjectDef, ref: FieldRef) -> Column:
        parts = ref.path.split(".")
        if len(parts) > 1 and parts[0].lower() == sobject.name.lower():
            parts = parts[1:]  # "Opportunity.Name" in a query on Opportunity names the object itself
        current = sobject
        path: list[str] = []
        objects = [sobject.name]
        references: list[FieldDef] = []
        for rel in parts[:-1]:
            ref_field = current.relationship(rel)
            if ref_field is None or ref_field.reference_to not in self.schema:
                raise _located(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                    "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                    "your WSDL or the describe call for the appropriate names.",
                    self.query.text, ref.pos)
            references.append(ref_field)
            path.append(ref_field.relationship)  # type: ignore[arg-type]
            current = self.schema[ref_field.reference_to]  # type: ignore[index]
            objects.append(current.name)
        leaf = current.field(parts[-1])
        if leaf is None:
            raise _located(
                "INVALID_FIELD",
                f"No such column '{parts[-1]}' on entity '{current.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
                self.query.text, ref.pos)
        path.append(leaf.name)
        return Column(tuple(path), tuple(objects), leaf, self._getter(references, leaf.name))

    def _getter(self, references: list[FieldDef], name: str) -> Getter:
        if not references:
            return itemgetter(name)
        hops = [(ref.name, self.tables[ref.reference_to]) for ref in references]  # type: ignore[index]

        def get(row: Row) -> Any:
            current: Row | None = row
            for ref_name, table in hops:
                current = table.get(current[ref_name]) if current[ref_name] is not None else None  # type: ignore[index]
                if current is None:
                    return None
            return current[name]

        return get

    def _predicate(self, sobject: ObjectDef, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self._predicate(sobject, operand) for operand in node.operands]
            if node.op == "NOT":
                inner = parts[0]
                return lambda row: not inner(row)
            return _combined(parts, every=node.op == "AND")
        return self._comparison(sobject, node)

    def _comparison(self, sobject: ObjectDef, node: Comparison) -> Predicate:
        column = self._column(sobject, node.field)
        ftype = column.field.type
        get = column.get
        if any(literal.kind == "DATE_LITERAL" for literal in node.values):
            return self._date_range(column, node)
        values = [self._value(column, node.op, literal) for literal in node.values]
        op = node.op
        if op == "LIKE":
            if ftype not in TEXT_TYPES and ftype not in ID_TYPES:
                raise _located("INVALID_FIELD", f"invalid operator on field: {column.field.name}",
                               self.query.text, node.field.pos)
            pattern = _like_regex(node.values[0].value)
            return lambda row: (v := get(row)) is not None and pattern.fullmatch(v) is not None
        if ftype in TEXT_TYPES:
            get = _casefolded(get)
        elif ftype in ID_TYPES:
            get = _id_matcher(get, values)
        if op in ("IN", "NOT IN"):
            members = frozenset(values)
            if op == "IN":
                return lambda row: get(row) in members
            return lambda row: get(row) not in members
        value = values[0]
        if value is None:
            if op == "=":
                return lambda row: get(row) is None
            if op == "!=":
                return lambda row: get(row) is not None
            raise _located("MALFORMED_QUERY", f"invalid operator on null: {op}", self.query.text, node.field.pos)
        if get is column.get and len(column.path) == 1:
            return _field_comparison(column.field.name, op, value)
        match op:
            case "=":
                return lambda row: get(row) == value
            case "!=":
                return lambda row: get(row) != value
            case "<":
                return lambda row: (v := get(row)) is not None and v < value
            case ">":
                return lambda row: (v := get(row)) is not None and v > value
            case "<=":
                return lambda row: (v := get(row)) is not None and v <= value
            case _:
                return lambda row: (v := get(row)) is not None and v >= value

    def _date_range(self, column: Column, node: Comparison) -> Predicate:
        """A comparison with a relative date literal: a range of days, in the column's representation."""
        literal = node.values[0]
        if column.field.type not in ("date", "datetime") or node.op in ("IN", "NOT IN", "LIKE") \
                or len(node.values) != 1:
            raise _located("INVALID_FIELD", f"value of filter criterion for field '{column.field.name}' must be of "
                           f"type {column.field.type} and should be enclosed in quotes", self.query.text, literal.pos)
        first, after = date_literal_range(*literal.value, self.today)
        if column.field.type == "date":
            low, high = first.isoformat(), after.isoformat()
        else:
            low, high = (format_datetime(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in (first, after))
        get = column.get
        match node.op:
            case "=":
                return lambda row: (v := get(row)) is not None and low <= v < high
            case "!=":
                return lambda row: (v := get(row)) is None or not low <= v < high
            case "<":
                return lambda row: (v := get(row)) is not None and v < low
            case "<=":
                return lambda row: (v := get(row)) is not None and v < high
            case ">":
                return lambda row: (v := get(row)) is not None and v >= high
            case _:
                return lambda row: (v := get(row)) is not None and v >= low

    def _value(self, column: Column, op: str, literal: Literal) -> Any:
        """The literal in the row representation of the column's type, or Salesforce's type error."""
        ftype = column.field.type
        if literal.kind == "NULL":
            return None
        expected = {"datetime": "DATETIME", "date": "DATE", "boolean": "BOOLEAN"}.get(
            ftype, "NUMBER" if ftype in NUMBER_TYPES else "STRING")
        if literal.kind != expected:
            quoted = "be enclosed in quotes" if expected == "STRING" else "not be enclosed in quotes"
            type_name = {"datetime": "dateTime"}.get(ftype, ftype)
            raise _located("INVALID_FIELD",
                           f"value of filter criterion for field '{column.field.name}' must be of type "
                           f"{type_name} and should {quoted}", self.query.text, literal.pos)
        if ftype == "datetime":
            return format_datetime(parse_datetime_literal(literal.value))
        if ftype in TEXT_TYPES:
            return literal.value if op == "LIKE" else literal.value.casefold()
        if ftype in ID_TYPES and op != "LIKE" and not ID_PATTERN.fullmatch(literal.value):
            raise _located("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}",
                           self.query.text, literal.pos)
        return literal.value


def _field_comparison(name: str, op: str, value: Any) -> Predicate:
    """A comparison on a field of the row itself: the hot path of incremental queries, kept call-free."""
    match op:
        case "=":
            return lambda row: row[name] == value
        case "!=":
            return lambda row: row[name] != value
        case "<":
            return lambda row: (v := row[name]) is not None and v < value
        case ">":
            return lambda row: (v := row[name]) is not None and v > value
        case "<=":
            return lambda row: (v := row[name]) is not None and v <= value
        case _:
            return lambda row: (v := row[name]) is not None and v >= value


def _combined(parts: list[Predicate], *, every: bool) -> Predicate:
    """AND (``every``) or OR of predicates, short-circuiting; two operands, the common case, inline."""
    if len(parts) == 2:
        first, second = parts
        return (lambda row: first(row) and second(row)) if every else (lambda row: first(row) or second(row))

    def check(row: Row) -> bool:
        for part in parts:
            if bool(part(row)) is not every:
                return not every
        return every

    return check


def _casefolded(get: Getter) -> Getter:
    def folded(row: Row) -> Any:
        value = get(row)
        return value.casefold() if value is not None else None

    return folded


def _id_matcher(get: Getter, values: list[Any]) -> Getter:
    """Salesforce accepts 15-character (case-sensitive) ids where it stores 18: compare on the given length."""
    if all(v is None or len(v) == 18 for v in values):
        return get
    return lambda row: (v[:15] if (v := get(row)) is not None else None)


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _sort_getter(column: Column) -> Getter:
    if column.field.type in TEXT_TYPES:
        return _casefolded(column.get)
    return column.get


def compile_query(query: Query, schema: Mapping[str, ObjectDef], tables: Tables,
                  today: date | None = None) -> CompiledQuery:
    """Check a parsed query against the org's schema (INVALID_TYPE, INVALID_FIELD …) and build its evaluator.

    ``today`` anchors relative date literals (TODAY, LAST_N_DAYS:n …); days are UTC days.
    """
    return _Compiler(query, schema, tables, today or datetime.now(UTC).date()).compile()


_FIXED_DATE_LITERALS = frozenset({
    "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH", "THIS_MONTH",
    "NEXT_MONTH", "LAST_QUARTER", "THIS_QUARTER", "NEXT_QUARTER", "LAST_YEAR", "THIS_YEAR", "NEXT_YEAR"})
_N_DATE_LITERALS = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"})


def date_literal_range(name: str, n: int, today: date) -> tuple[date, date]:
    """The days ``[first, after)`` a relative date literal stands for (weeks start on Sunday)."""
    day = timedelta(days=1)
    if name in ("YESTERDAY", "TODAY", "TOMORROW"):
        start = today + day * ("YESTERDAY", "TODAY", "TOMORROW").index(name) - day
        return start, start + day
    if name == "LAST_N_DAYS":  # the n days before today, and today
        return today - day * n, today + day
    if name == "NEXT_N_DAYS":
        return today + day, today + day * (n + 1)
    if name == "N_DAYS_AGO":
        return today - day * n, today - day * (n - 1)
    step = ("LAST", "THIS", "NEXT").index(name.split("_")[0]) - 1
    unit = name.split("_")[1]
    if unit == "WEEK":
        start = today - day * ((today.weekday() + 1) % 7) + timedelta(weeks=step)
        return start, start + timedelta(weeks=1)
    if unit == "YEAR":
        return date(today.year + step, 1, 1), date(today.year + step + 1, 1, 1)
    months = 3 if unit == "QUARTER" else 1
    first = (today.year * 12 + (today.month - 1) // months * months) + step * months
    after = first + months
    return date(first // 12, first % 12 + 1, 1), date(after // 12, after % 12 + 1, 1)


def execute(compiled: CompiledQuery, rows: list[Row]) -> list[Row]:
    """Filter, order, offset and limit ``rows`` (the candidate rows of the queried object)."""
    predicate = compiled.predicate
    matched = list(filter(predicate, rows)) if predicate is not None else list(rows)
    # Stable sorts from the last key to the first give a multi-key order with mixed directions.
    for key, descending, nulls_last in reversed(compiled.sort_keys):
        keys = list(map(key, matched))
        if None in keys:
            present = [i for i, k in enumerate(keys) if k is not None]
            missing = [i for i, k in enumerate(keys) if k is None]
        else:
            present, missing = list(range(len(keys))), []
        present.sort(key=keys.__getitem__, reverse=descending)
        order = present + missing if nulls_last else missing + present
        matched = [matched[i] for i in order]
    query = compiled.query
    end = None if query.limit is None else query.offset + query.limit
    return matched[query.offset : end] if query.offset or end is not None else matched
