"""Company names across scripts: 海康威视 / Haikang Weishi, 한빛 / Hanbit / Hanpit, Жуков / Zhukov / Jukov.

One CRM holds a customer in its own script, another in Latin letters, and
reps romanise by different schemes (pinyin or Wade–Giles, Revised or
McCune–Reischauer, Hepburn or Kunrei, BGN or ISO for Cyrillic). A name is
romanised by the well-kept library for its script — pypinyin (Chinese),
pykakasi (Japanese kana and kanji), korean-romanizer (Hangul), anyascii
(everything else: Cyrillic, Greek, Hebrew, Arabic …) — and then reduced to a
*skeleton* on which the schemes agree: voiced and voiceless consonants
merged (g/k, d/t, b/p, j/ch/zh/ts), Kunrei ti/tu/hu read as Hepburn
chi/tsu/fu, digraphs read as one sound (kh, sh, ph), vowels, h and y and doubled letters dropped. "Chungshin" and "Zhongxin" are one
skeleton; so are "Hanbit" and "Hanpit".

Called once per distinct company (``features._account_keys``), never per deal.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pipesync.consolidate.keys import Lexicon, fold

_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
# the sounds romanisation schemes spell differently, each read as one letter (longest first)
_SOUNDS = [
    ("shch", "s"), ("tsch", "c"), ("sch", "s"), ("zh", "c"), ("ch", "c"), ("ts", "c"), ("tz", "c"), ("kh", "h"),
    ("sh", "s"), ("ph", "f"), ("th", "t"), ("dh", "t"), ("gh", "k"), ("hs", "s"), ("ck", "k"), ("ou", "u"),
    # Kunrei / Nihon-shiki against Hepburn: ti = chi, tu = tsu, hu = fu
    ("ti", "ci"), ("tu", "cu"), ("fu", "hu"),
]
_SOUND = re.compile("|".join(re.escape(a) for a, _ in _SOUNDS))
_SOUND_OF = dict(_SOUNDS)
_LETTERS = str.maketrans({"g": "k", "q": "c", "j": "c", "z": "c", "x": "s", "d": "t", "b": "p", "w": "v",
                          "y": None, "h": None})
# vowels are what schemes disagree on most (seong / song, Noor / Nur), and Arabic and Hebrew seldom write them
_VOWELS = re.compile(r"[aeiou]+")
_DOUBLES = re.compile(r"(.)\1+")


@lru_cache(maxsize=1)
def _kakasi():  # type: ignore[no-untyped-def]
    import pykakasi  # loaded on first use: most runs hold no Japanese names

    return pykakasi.kakasi()


def romanize(text: str) -> str:
    """``text`` in Latin letters, each script by its own library; Latin text unchanged."""
    if text.isascii():
        return text
    from anyascii import anyascii

    if _KANA.search(text):
        if not _HAN.search(text):  # kana alone: spelled out letter by letter, no dictionary needed
            return anyascii(text)
        # kanji beside kana is Japanese: read the Japanese way, not as pinyin
        return " ".join(part["hepburn"] for part in _kakasi().convert(text))
    if _HANGUL.search(text):
        from korean_romanizer.romanizer import Romanizer

        text = _HANGUL.sub(lambda m: " " + Romanizer(m.group(0)).romanize() + " ", text)
    if _HAN.search(text):
        from pypinyin import lazy_pinyin

        text = _HAN.sub(lambda m: " " + "".join(lazy_pinyin(m.group(0))) + " ", text)
    return anyascii(text)


def skeleton(latin: str) -> str:
    """What romanisation schemes agree on in a Latin name: its consonant sounds, merged as above."""
    text = "".join(c for c in latin.lower() if c.isalpha())
    text = _SOUND.sub(lambda m: _SOUND_OF[m.group(0)], text)
    text = text.translate(_LETTERS)
    return _DOUBLES.sub(r"\1", _VOWELS.sub("", text))


def company_skeleton(company: str, lexicon: Lexicon) -> str:
    """The skeleton of a company's words (legal forms already gone), romanised first when needed;
    legal forms written in Latin letters ("Kabushiki Kaisha", "OOO") go too."""
    if not company:
        return ""
    if not company.isascii():
        company = " ".join(lexicon.company_tokens(fold(romanize(company)))) or romanize(company)
    return skeleton(company)
