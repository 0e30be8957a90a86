"""embedding_first with ``naming="keywords"``: each cluster is named by its most distinctive words, found by
class-based TF-IDF as BERTopic does, so a run needs no LLM at all (an offline machine, no server, no cost).

c-TF-IDF treats a cluster's texts as one document: W(t, c) = tf(t, c) * log(1 + A / f(t)), with tf the term's
frequency in the cluster (normalised by the cluster's word count, as BERTopic does), A the average number of
words per cluster and f(t) the term's frequency over all clusters. A word frequent in one cluster and rare
elsewhere scores high; a word every cluster uses ("and", a unit) scores low without any language-specific list.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np

from semantic_catalog.engine.segmentation.batches import normalize_name, segment_label

NAME_WORDS = 3  # words in a cluster's name
DEFINITION_WORDS = 8  # words listed in its definition
SEPARATOR = " · "
WORD = re.compile(r"[^\W_]+")  # unicode letters and digits (str patterns are unicode-aware)
# A few function words of the catalog's usual languages; c-TF-IDF already weighs down what every cluster says,
# this only keeps such words out of a name when two clusters use them unevenly.
_FUNCTION_WORDS = {
    "en": "the and for with from that this are was were not but you your our its into per each than then also",
    "id": "dan yang untuk dengan atau ini itu dari pada juga ada tidak akan bisa sudah saja lalu agar hingga sampai "
    "karena oleh dalam atas bagi",
    "de": "der die das und mit für von den dem des ein eine",
    "fr": "les une pour avec dans sur par",
}
STOP_WORDS = frozenset(word for words in _FUNCTION_WORDS.values() for word in words.split())


def tokenize(text: str, stop_words: Collection[str] = STOP_WORDS) -> list[str]:
    """Lowercase word tokens with at least 3 letters (so no pure numbers and no "250ml"), stop words left out."""
    words = WORD.findall(unicodedata.normalize("NFC", text).lower())
    return [w for w in words if sum(ch.isalpha() for ch in w) >= 3 and w not in stop_words]


def c_tf_idf(
    texts_by_cluster: Sequence[Sequence[str]], stop_words: Collection[str] = STOP_WORDS
) -> tuple[list[str], np.ndarray]:
    """(vocabulary, scores): scores[c, t] is the c-TF-IDF weight of vocabulary[t] in cluster c."""
    counts = [Counter(w for text in texts for w in tokenize(text, stop_words)) for texts in texts_by_cluster]
    vocabulary = sorted(set().union(*counts))
    position = {word: i for i, word in enumerate(vocabulary)}
    tf = np.zeros((len(counts), len(vocabulary)))
    for c, counter in enumerate(counts):
        for word, n in counter.items():
            tf[c, position[word]] = n
    if not vocabulary:
        return vocabulary, tf
    average = tf.sum() / len(counts)  # A: words per cluster
    idf = np.log1p(average / tf.sum(axis=0))  # every word occurs somewhere: f(t) >= 1
    tf /= np.maximum(tf.sum(axis=1, keepdims=True), 1.0)
    return vocabulary, tf * idf


def distinctive_words(
    texts_by_cluster: Sequence[Sequence[str]], top: int = 10, stop_words: Collection[str] = STOP_WORDS
) -> list[list[str]]:
    """Each cluster's ``top`` words by c-TF-IDF, most distinctive first (ties: alphabetical, so deterministic);
    only words the cluster uses."""
    vocabulary, scores = c_tf_idf(texts_by_cluster, stop_words)
    ranked = []
    for row in scores:
        order = sorted(np.flatnonzero(row > 0), key=lambda t: (-row[t], vocabulary[t]))
        ranked.append([vocabulary[t] for t in order[:top]])
    return ranked


def cluster_names(texts_by_cluster: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(name, definition) per cluster: the top NAME_WORDS words joined, made unique by adding the next
    distinctive word (or, with no words left, the cluster's S_<n>); the definition says how it was named."""
    extra = 2 * NAME_WORDS  # spare words to tell clusters with the same top words apart
    words = distinctive_words(texts_by_cluster, top=max(DEFINITION_WORDS, NAME_WORDS + extra))
    named: list[tuple[str, str]] = []
    taken: set[str] = set()
    for c, ranked in enumerate(words):
        label = segment_label(c)
        candidates = [SEPARATOR.join(ranked[:n]) for n in range(min(NAME_WORDS, len(ranked)), len(ranked) + 1)]
        free = [name for name in candidates if name and normalize_name(name) not in taken]
        # no words at all, or every longer name is taken: the segment id tells it apart
        name = free[0] if free else f"{candidates[0]} ({label})" if ranked else f"Cluster {label}"
        taken.add(normalize_name(name))
        size = len(texts_by_cluster[c])
        if ranked:
            definition = (
                f"{size} item(s) grouped by their vectors; named by their most distinctive words (c-TF-IDF), "
                f"not by an LLM. Top words: {', '.join(ranked[:DEFINITION_WORDS])}."
            )
        else:
            definition = (
                f"{size} item(s) grouped by their vectors; not named by an LLM, and their texts have no word "
                "of 3 letters or more to name them by."
            )
        named.append((name, definition))
    return named
