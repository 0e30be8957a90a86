"""The encoder contract: text in, L2-normalised float32 vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Encoder(ABC):
    """Turns texts into unit-length float32 vectors.

    Subclasses set ``name`` (stable: it names the collection, so a different model gets a new one),
    implement ``dimension`` and ``_encode``; ``encode`` does the batching-independent checks and
    normalisation so every backend returns the same shape and dtype.
    """

    name: str = ""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of each vector."""

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Return a (len(texts), dimension) array; need not be normalised."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode documents in batches; returns (n, dimension) float32 rows of unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._encode(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.dimension):
            raise RuntimeError(
                f"Encoder {self.name!r} returned shape {vectors.shape}, expected {(len(texts), self.dimension)}."
            )
        return normalise(vectors)

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """How long each text is for the model, to batch texts of like length together (less padding): the
        token count where the encoder has its tokenizer at hand, else the number of characters."""
        return [len(text) for text in texts]

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one search query; models with query prompts override this and ``encode_queries``."""
        return self.encode([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode many search queries in batches (evaluation, adapter training); same vectors as
        ``encode_query``."""
        return self.encode(texts)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero) so dot product equals cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32, copy=False)
