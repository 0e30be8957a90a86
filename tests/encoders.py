"""The real bundled model, counting the texts it encodes (to prove unchanged content is not re-encoded)."""

from __future__ import annotations

import numpy as np

from semantic_catalog.engine.encoders import SentenceTransformerEncoder


class CountingEncoder(SentenceTransformerEncoder):
    texts_encoded = 0
    calls = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        CountingEncoder.calls += 1
        CountingEncoder.texts_encoded += len(texts)
        return super()._encode(texts)

    @classmethod
    def reset(cls) -> None:
        cls.calls = 0
        cls.texts_encoded = 0
