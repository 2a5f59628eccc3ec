"""One person per deal owner, across systems: "marie@…", "marie.durand@…" and "Marie Durand" are one.

Each system writes its users its own way: an e-mail address (its local part in one of
several styles), a display name (full, "Durand, Marie", "M. Durand", without accents).
Owners are joined into people by, in order of trust:

1. the same e-mail address (case aside);
2. the same name, its words in any order, accents and case aside;
3. an e-mail's local part that spells exactly one named person's name: ``marie.durand``,
   ``mdurand``, ``durand.marie``, ``marie_durand`` …, or a first name (``marie``) that
   exactly one named person has;
4. a name with an initial ("M. Durand") that exactly one named person fits.

A match that fits two people joins nobody. Each person is shown by the name their deals
carry most often (full names first), else by the address. A mapping file's ``owners:``
(source owner → name) is applied when deals are normalized, so its names win here.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence

_WORD = re.compile(r"[^\W\d_]+")
NO_OWNER = "(no owner)"


def _words(text: str) -> list[str]:
    """Letters only, accents and case folded: "Durand, Marie-Hélène" → durand, marie, helene."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _WORD.findall(plain.casefold())


class _Union:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]  # type: ignore[index]
            x = self.parent[x]
        return x

    def join(self, a: object, b: object) -> None:
        self.parent[self.find(a)] = self.find(b)


def _as_shown(name: str) -> str:
    """A name as read aloud: "Durand, Marie" → "Marie Durand"."""
    last, comma, first = name.strip().partition(",")
    return f"{first.strip()} {last.strip()}" if comma and first.strip() and "," not in first else name.strip()


def people(emails: Sequence[str | None], names: Sequence[str | None]) -> list[str]:
    """Each deal's owner (``emails[i]``, ``names[i]``) as the person it is: their display name."""
    pairs = Counter(zip(emails, names))
    union = _Union()
    full: dict[tuple[str, ...], list[str]] = defaultdict(list)  # a full name's words (sorted) → its spellings
    for email, name in pairs:
        me = ("pair", email, name)
        if email:
            union.join(me, ("email", email.casefold()))
        words = _words(name or "")
        if words:
            union.join(me, ("name", tuple(sorted(words))))
            if len(words) >= 2 and all(len(w) > 1 for w in words):
                full[tuple(sorted(words))].append(name)  # type: ignore[arg-type]

    # What an address's local part or an initialled name may stand for: each full name, by every spelling.
    spelled: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    firsts: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    initialled: dict[tuple[str, str], set[tuple[str, ...]]] = defaultdict(set)
    for key, spellings in full.items():
        for name in spellings:
            words = _words(name)
            first, last = words[0], words[-1]
            if "," in name:  # "Durand, Marie": the family name comes first
                first, last = words[-1], words[0]
            for a, b in ((first, last), (last, first)):
                for form in (a + b, a[0] + b, a + b[0]):
                    spelled[form].add(key)
            spelled["".join(words)].add(key)
            firsts[first].add(key)
            initialled[(first[0], last)].add(key)

    for email, name in pairs:
        me = ("pair", email, name)
        if email and "@" in email:
            local = "".join(_words(email.split("@", 1)[0]))
            match = spelled.get(local) or firsts.get(local)
            if match and len(match) == 1:
                union.join(me, ("name", next(iter(match))))
        words = _words(name or "")
        if len(words) == 2 and min(map(len, words)) == 1:  # "M. Durand" / "Durand M."
            initial, last = (words[0], words[1]) if len(words[0]) == 1 else (words[1], words[0])
            match = initialled.get((initial, last))
            if match and len(match) == 1:
                union.join(me, ("name", next(iter(match))))

    # Display: the full name a person's deals carry most, else any name, else the address.
    shown: dict[object, Counter[tuple[int, str]]] = defaultdict(Counter)
    for (email, name), n in pairs.items():
        root = union.find(("pair", email, name))
        words = _words(name or "")
        if name and name.strip():
            rank = 2 if len(words) >= 2 and all(len(w) > 1 for w in words) else 1
            shown[root][(rank, _as_shown(name))] += n
        elif email:
            shown[root][(0, email)] += n
    display = {root: max(c.items(), key=lambda kv: (kv[0][0], kv[1], kv[0][1]))[0][1] for root, c in shown.items()}
    return [display.get(union.find(("pair", e, n)), NO_OWNER) for e, n in zip(emails, names)]
