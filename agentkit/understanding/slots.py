"""Slots: the entities in a user's words, read by well-kept parsers where they exist.

* dates and times: `dateparser`'s `search_dates`, told the language (it costs ~2 ms then, against ~100 ms, and
  seconds on the first call, when it must guess the language itself);
* money: `price-parser` normalises the amount (``1.234,50 €``, ``$1,200``) and the currency;
* units: `pint`'s unit registry decides whether the word after a number is a unit, and names it canonically;
* emails, URLs, file paths and quoted strings have no parser worth a dependency: one regular expression each.

Each reader claims its spans in turn (opaque ones first, so ``/tmp/a2b.txt`` is never read as a number; money and
dates before bare numbers), and later readers see claimed spans blanked out. Only the first 2,000 characters are read:
slots matter in a request, not in a pasted document, and dateparser's cost grows with the length.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import Any

from agentkit.protocols import Slot

__all__ = ["MAX_SLOT_CHARS", "extract_slots"]

MAX_SLOT_CHARS = 2000
"""Slots are read from this many leading characters of a text."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[^\s<>\"']+", re.IGNORECASE)
_EXTENSIONS = (
    "txt|md|rst|csv|tsv|json|jsonl|yaml|yml|toml|ini|cfg|xml|html|css|js|ts|py|ipynb|rs|go|java|c|h|cpp|sh|sql|"
    "log|pdf|docx?|xlsx?|pptx?|png|jpe?g|gif|svg|zip|gz|tar|parquet"
)
_PATH = re.compile(
    r"(?<![\w/.])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+/?"  # /abs/path, ./rel, ~/home
    r"|\b[A-Za-z]:\\(?:[\w.\- ]+\\)*[\w.\-]+"  # C:\windows\path
    rf"|(?<![\w/.])(?:[\w\-]+/)*[\w\-]+\.(?:{_EXTENSIONS})\b",  # notes.txt, src/main.py
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\"([^\"\n]{1,500})\"|(?<![\w'])'([^'\n]{1,500})'(?!\w)|“([^”\n]{1,500})”|«([^»\n]{1,500})»")
_CURRENCY = r"(?:[$€£¥₹₩₽₺₪₫฿]|\b[A-Z]{3}\b)"
_AMOUNT = r"\d{1,3}(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?(?!\d)|\d+(?:[.,]\d{1,2})?(?!\d)"
_MONEY = re.compile(rf"{_CURRENCY}\s?(?:{_AMOUNT})|(?<![\w.])(?:{_AMOUNT})\s?{_CURRENCY}")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<number>[-+]?\d+(?:,\d{3})*(?:\.\d+)?)(?![\d,]*\.\d)(?:\s?(?P<unit>°?[^\W\d_]+(?:/[^\W\d_]+)?|%))?"
)
_TRAILING = ".,;:!?)]}'\""
# Words pint reads as units that in a sentence are almost always words ("5 in a row", "at 3 pm").
_NOT_UNITS = frozenset({"a", "am", "pm", "at", "in", "s", "t", "x", "C", "F", "ft", "it", "to", "or", "by"})
# English words that make a span without digits a date; dateparser also reads "a second", "may", "can" and "to".
_DATE_WORDS = re.compile(
    r"\b(?:today|tomorrow|tonight|yesterday|noon|midnight|morning|afternoon|evening|weekend|ago|next|last|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|january|february|march|april|june|july|august|september|"
    r"october|november|december|(?:minute|hour|day|week|month|year)s?)\b",
    re.IGNORECASE,
)
# 10:30, 5pm, 2025, 3/4/2025, 2025-03-04; not 1/2 (a fraction) or 3.5 (a number).
_TIME_OR_DATE_DIGITS = re.compile(
    r"\d:\d\d|\d\s?(?:am|pm)\b|\b\d{4}\b|\b\d{1,4}([/.\-])\d{1,2}\1\d{1,4}\b", re.IGNORECASE
)
_JOINERS = frozenset({"and", "or", "then", "und", "et", "y"})  # dateparser keeps the word before a date
_dates_lock = threading.Lock()


def extract_slots(text: str, *, language: str | None = None) -> list[Slot]:
    """Find the entities in a text.

    Args:
        text: The user's words; only the first `MAX_SLOT_CHARS` characters are read.
        language: The text's ISO 639-1 code, which dates are read in (English when None or unknown to dateparser).

    Returns:
        The slots, in the order they appear.
    """
    masked = text[:MAX_SLOT_CHARS]
    slots: list[Slot] = []
    readers: list[Callable[[str], Iterator[Slot]]] = [
        _emails,
        _urls,
        _paths,
        _quoted,
        _money,
        lambda t: _dates(t, language),
        _numbers,
    ]
    for read in readers:
        for slot in read(masked):
            slots.append(slot)
            # Blanking keeps offsets and stops later readers from reading the span again.
            masked = masked[: slot.start] + " " * len(slot.text) + masked[slot.start + len(slot.text) :]
    return sorted(slots, key=lambda s: s.start)


def _spans(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, str, re.Match[str]]]:
    for match in pattern.finditer(text):
        found = match.group(0).rstrip(_TRAILING)
        if found:
            yield match.start(), found, match


def _emails(text: str) -> Iterator[Slot]:
    for start, found, _ in _spans(_EMAIL, text):
        yield Slot("email", found, found, start=start)


def _urls(text: str) -> Iterator[Slot]:
    for start, found, _ in _spans(_URL, text):
        yield Slot("url", found, found, start=start)


def _paths(text: str) -> Iterator[Slot]:
    for start, found, _ in _spans(_PATH, text):
        if found.strip("/.~") and not found.replace("/", "").isdigit():  # "/" alone, or a fraction like 1/2
            yield Slot("path", found, found, start=start)


def _quoted(text: str) -> Iterator[Slot]:
    for match in _QUOTED.finditer(text):
        inner = next(g for g in match.groups() if g is not None)
        if inner.strip():
            yield Slot("quoted", match.group(0), inner, start=match.start())


def _money(text: str) -> Iterator[Slot]:
    from price_parser import Price

    for match in _MONEY.finditer(text):
        found = match.group(0).strip()
        price = Price.fromstring(found)
        # price-parser knows which three capitals are currencies: "ABC 12" is not money.
        if price.amount is not None and price.currency is not None:
            yield Slot("money", found, float(price.amount), unit=price.currency, start=match.start())


def _dates(text: str, language: str | None) -> Iterator[Slot]:
    if not any(ch.isdigit() for ch in text) and not _DATE_WORDS.search(text) and language in (None, "en"):
        return  # most requests name no date, and this skips dateparser's ~2 ms
    for found, when in _search_dates(text, language):
        # dateparser gives the span with its whitespace squeezed: find it with any whitespace between the words.
        words = found.split()
        while len(words) > 1 and words[0].lower() in _JOINERS:
            words.pop(0)
        while len(words) > 1 and words[-1].lower() in _JOINERS:
            words.pop()
        match = re.search(r"\s+".join(map(re.escape, words)), text)
        if match is None or not _is_date(found, language):
            continue
        # A run of blanks is a span an earlier reader claimed, which dateparser read across: keep what follows it.
        start = match.start() + max(0, match.group(0).rfind("  ") + 2) if "  " in match.group(0) else match.start()
        span = text[start : match.end()].strip().rstrip(_TRAILING)
        if span:
            yield Slot("date", span, when, start=text.index(span, start))


def _search_dates(text: str, language: str | None) -> list[tuple[str, str]]:
    from dateparser.search import search_dates

    settings: Any = {"PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False}
    try:
        with _dates_lock:  # dateparser fills shared caches on first use of a language
            found = search_dates(text, languages=[language or "en"], settings=settings)
    except ValueError:  # a language dateparser does not know: English is the best guess for dates
        with _dates_lock:
            found = search_dates(text, languages=["en"], settings=settings)
    return [(span.strip(), when.isoformat()) for span, when in found or []]


def _is_date(found: str, language: str | None) -> bool:
    if re.search(r"[+*=^]", found):  # "12 + 7" reads as 12 July
        return False
    if language not in (None, "en"):
        return True  # the filters below know English words only
    if _DATE_WORDS.search(found):
        return True
    return bool(_TIME_OR_DATE_DIGITS.search(found))


def _numbers(text: str) -> Iterator[Slot]:
    for match in _NUMBER.finditer(text):
        number, word = match.group("number"), match.group("unit")
        unit = _unit(word) if word else None
        found = match.group(0) if unit else number  # "5 apples": the number alone
        yield Slot("number", found, float(number.replace(",", "")), unit=unit, start=match.start())


@cache
def _units() -> Any:
    import pint

    return pint.UnitRegistry()


@lru_cache(maxsize=4096)
def _unit(word: str) -> str | None:
    """The canonical name of a unit word (``"km/h"`` -> ``"kilometer / hour"``), or None for other words."""
    if word in _NOT_UNITS or len(word) > 30:
        return None
    try:
        canonical = str(_units().parse_units(word))
    except Exception:  # pint raises several kinds of errors for words that are not units
        return None
    # pint splits unknown words into prefix and unit ("units" -> micro + nit): a long word must be the unit's name.
    if len(word) > 4 and not canonical.lower().startswith(word.lower()[:3]):
        return None
    return canonical
