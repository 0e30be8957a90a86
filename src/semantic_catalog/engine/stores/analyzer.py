"""How an index's text becomes keyword-search terms, per language: the options LanceDB's full-text index
is built with, and a mirror of them (``TextAnalyzer.terms``) that tells how much of a query a hit contains.

LanceDB (tantivy) stems only some languages (``STEMMED``). Others that have a stop-word list (Czech,
Indonesian, Polish...) fall back to: the simple tokenizer, no stemming, that language's stop words,
accents folded and lower-cased, so "vrtacka" still finds "vrtačka" but "vrtačky" (another case of the
same word) does not; ``ngram=(3, 3)`` trades precision for matching inflected and affixed forms.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.stores import terms as english

# Languages LanceDB 0.40's full-text index can stem (tantivy's Snowball stemmers); checked against it in
# tests/test_text_analyzer.py.
STEMMED = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil", "turkish",
)  # fmt: skip
# ISO 639-1 codes accepted for the language names.
CODES = {
    "ar": "arabic", "bg": "bulgarian", "ca": "catalan", "cs": "czech", "da": "danish", "nl": "dutch",
    "en": "english", "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hu": "hungarian",
    "id": "indonesian", "it": "italian", "ms": "malaysian", "no": "norwegian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sk": "slovak", "es": "spanish", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "uk": "ukrainian", "vi": "vietnamese",
}  # fmt: skip
OPTIONS = ("language", "stem", "remove_stop_words", "stop_words", "ascii_folding", "lower_case", "ngram")
_WORD = re.compile(r"[^\W_]+")
_local = threading.local()


def known_languages() -> list[str]:
    """Languages an index may declare: those LanceDB stems and those with a stop-word list."""
    from stop_words import AVAILABLE_LANGUAGES

    return sorted(set(STEMMED) | (set(AVAILABLE_LANGUAGES) - {"chinese", "japanese", "korean"}))


def language_stop_words(language: str) -> tuple[str, ...]:
    """The ``stop-words`` package's list for ``language``, each word also accent-folded (LanceDB drops
    stop words before folding, the mirror after it: both forms keep them in step)."""
    if language == "english":
        return tuple(sorted(english.STOP_WORDS))
    from stop_words import StopWordError, get_stop_words

    try:
        words = {w.lower() for w in get_stop_words(language)}
    except StopWordError:  # a language LanceDB stems but the package has no list for (Tamil)
        return ()
    return tuple(sorted(words | {_fold(w) for w in words}))


def _fold(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _stemmer(language: str) -> Any:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        import Stemmer

        stemmer = stemmers[language] = Stemmer.Stemmer(language)
    return stemmer


@dataclass(frozen=True)
class TextAnalyzer:
    """The keyword analyser of one index. ``language`` picks the defaults; every other option overrides
    one: ``stem`` (None = when LanceDB can stem the language), ``remove_stop_words``, ``stop_words``
    (a list replacing the language's), ``ascii_folding``, ``lower_case``, ``ngram`` ((min, max) character
    n-grams instead of words; for languages without a stemmer)."""

    language: str = "english"
    stem: bool | None = None
    remove_stop_words: bool = True
    stop_words: tuple[str, ...] | None = None
    ascii_folding: bool = True
    lower_case: bool = True
    ngram: tuple[int, int] | None = None
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        language = str(self.language).strip().lower()
        language = CODES.get(language, language)
        if language not in known_languages():
            raise ConfigurationError(
                f"Unknown keyword language {self.language!r}: use one of {', '.join(known_languages())} "
                "(or an ISO 639-1 code such as 'cs')."
            )
        object.__setattr__(self, "language", language)
        for name in ("remove_stop_words", "ascii_folding", "lower_case"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"Keyword option {name!r} must be True or False, got {getattr(self, name)!r}.")
        if self.stem is not None and not isinstance(self.stem, bool):
            raise ConfigurationError(f"Keyword option 'stem' must be True, False or None, got {self.stem!r}.")
        if self.ngram is not None:
            ngram = self.ngram
            if (
                not isinstance(ngram, list | tuple)
                or len(ngram) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in ngram)
                or not 1 <= ngram[0] <= ngram[1] <= 10
            ):
                raise ConfigurationError(
                    f"Keyword option 'ngram' must be (min, max) with 1 <= min <= max <= 10, got {ngram!r}."
                )
            object.__setattr__(self, "ngram", (ngram[0], ngram[1]))
            if self.stem:
                raise ConfigurationError("Keyword options 'ngram' and 'stem' exclude each other: set stem to False.")
        if self.stem and language not in STEMMED:
            raise ConfigurationError(
                f"LanceDB cannot stem {language.title()}: leave 'stem' unset (no stemming, {language} stop words, "
                "accents folded) or use 'ngram': (3, 3)."
            )
        if self.stop_words is not None:
            if isinstance(self.stop_words, str) or not all(isinstance(w, str) for w in self.stop_words):
                raise ConfigurationError("Keyword option 'stop_words' must be a list of words.")
            words = {w.lower() for w in self.stop_words}
            object.__setattr__(self, "stop_words", tuple(sorted(words | {_fold(w) for w in words})))

    @classmethod
    def from_options(cls, options: str | Mapping[str, Any] | TextAnalyzer | None) -> TextAnalyzer:
        """An analyser from an index's declaration: None (English), a language, or a dict of options."""
        if options is None:
            return cls()
        if isinstance(options, TextAnalyzer):
            return options
        if isinstance(options, str):
            return cls(language=options)
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"Keyword options must be a language or a dict, got {type(options).__name__}.")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"Unknown keyword option(s) {', '.join(map(repr, unknown))}: use {', '.join(OPTIONS)}."
            )
        values = dict(options)
        if values.get("stop_words") is not None and not isinstance(values["stop_words"], str):
            values["stop_words"] = tuple(values["stop_words"])
        return cls(**values)

    @property
    def stems(self) -> bool:
        return self.language in STEMMED and self.ngram is None if self.stem is None else self.stem

    @property
    def effective_stop_words(self) -> tuple[str, ...]:
        if not self.remove_stop_words:
            return ()
        return self.stop_words if self.stop_words is not None else language_stop_words(self.language)

    @cached_property
    def is_default(self) -> bool:
        return self == TextAnalyzer()

    @cached_property
    def _stop_set(self) -> frozenset[str]:
        return frozenset(self.effective_stop_words)

    def fts_options(self) -> dict[str, Any]:
        """Keyword arguments of ``lancedb.index.FTS``. The default analyser gives LanceDB's defaults, so
        collections made before languages existed are not rebuilt."""
        options: dict[str, Any] = {
            "base_tokenizer": "ngram" if self.ngram else "simple",
            "language": self.language.title() if self.stems else "English",
            "stem": self.stems,
            "remove_stop_words": self.remove_stop_words,
            "ascii_folding": self.ascii_folding,
            "lower_case": self.lower_case,
        }
        if self.ngram:
            options["ngram_min_length"], options["ngram_max_length"] = self.ngram
            options["remove_stop_words"] = False  # n-grams are not words
        elif self.remove_stop_words and (self.stop_words is not None or self.language != "english"):
            options["custom_stop_words"] = list(self.effective_stop_words)
            options["remove_stop_words"] = bool(options["custom_stop_words"])
        return options

    def describe(self) -> str:
        if self.ngram:
            how = f"{self.ngram[0]}-{self.ngram[1]} character n-grams"
        else:
            how = f"{'stemmed' if self.stems else 'unstemmed'} words"
            how += ", stop words dropped" if self.remove_stop_words else ""
        return f"{self.language}: {how}{', accents folded' if self.ascii_folding else ''}"

    def terms(self, text: str) -> set[str]:
        """The distinct terms the full-text index makes of ``text`` (mirrors ``fts_options``)."""
        if self.is_default:
            return english.terms(text)
        if self.lower_case:
            text = text.lower()
        if self.ngram:
            if self.ascii_folding:
                text = _fold(text)
            low, high = self.ngram
            return {text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)}
        stop = self._stop_set
        stemmer = _stemmer(self.language) if self.stems else None
        cache = self._cache
        found = set()
        for word in _WORD.findall(text):
            if len(word) > english.MAX_TOKEN_LENGTH or word in stop:
                continue
            term = cache.get(word)
            if term is None:
                if len(cache) >= english.MAX_CACHED_STEMS:
                    cache.clear()
                term = stemmer.stemWord(word) if stemmer else word
                term = cache[word] = _fold(term) if self.ascii_folding else term
            if term not in stop:
                found.add(term)
        return found


DEFAULT_ANALYZER = TextAnalyzer()
