"""The words a full-text index sees, so a keyword hit can say how much of the query it contains.

Mirrors LanceDB's full-text defaults, which ``LanceDBStore`` indexes with: split on anything that is
not a letter or digit, lower-cased, accents folded to ASCII, English stop words dropped, each word
stemmed with Snowball English ("drills" and "drilling" are "drill").
"""

from __future__ import annotations

import re
import threading
import unicodedata

# tantivy's (Lucene's) English stop words, the list LanceDB's remove_stop_words uses
STOP_WORDS = frozenset(
    (
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
        "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to",
        "was", "will", "with",
    )
)
MAX_TOKEN_LENGTH = 40  # longer tokens are not indexed
_WORD = re.compile(r"[^\W_]+")
_local = threading.local()  # a Snowball stemmer is not to be shared between threads
# word -> stem, filled as words are met (a search sees the same catalog words again and again); a plain
# dict lookup is the cheapest step of the loop below. Emptied when it grows past MAX_CACHED_STEMS, as
# queries can bring any number of new words.
_STEMS: dict[str, str] = {}
MAX_CACHED_STEMS = 200_000


def _stem(word: str) -> str:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


def terms(text: str) -> set[str]:
    """The distinct indexed terms of ``text``."""
    lowered = text.lower()
    if not lowered.isascii():
        lowered = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode("ascii")
    stems = _STEMS
    found = set()
    for word in _WORD.findall(lowered):
        if word in STOP_WORDS or len(word) > MAX_TOKEN_LENGTH:
            continue
        stem = stems.get(word)
        if stem is None:
            if len(stems) >= MAX_CACHED_STEMS:
                stems.clear()
            stem = stems[word] = _stem(word)
        found.add(stem)
    return found
