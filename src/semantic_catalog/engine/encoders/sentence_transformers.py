"""Encoder for sentence-transformers models: torch, or on a CPU the model's own ONNX export.

Nothing heavy is imported until the model is first used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.encoders.bundled import BUNDLED_MODEL_NAME, bundled_model_path
from semantic_catalog.engine.encoders.quiet import quiet_model_loading
from semantic_catalog.engine.errors import ConfigurationError

BACKENDS = ("auto", "torch", "onnx")

logger = logging.getLogger("semantic_catalog")


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model by name or path; the bundled all-MiniLM-L6-v2 when none is given.

    Options: ``model`` (name or path), ``device`` (None picks CUDA when present), ``batch_size``,
    ``query_prompt`` / ``document_prompt`` (prefixes for asymmetric models such as E5),
    ``num_threads`` (CPU threads; on small machines fewer threads avoid over-subscription),
    ``half`` (float16 weights; None = on CUDA only), ``name`` (how collections and vector files name it),
    ``backend``, ``onnx_cache_dir`` and ``int8_queries`` (below).

    ``backend="auto"`` (the default) runs the model with torch on a GPU and, on a CPU, through its fp32
    ONNX export with onnxruntime: the same vectors (checked at export, cosine >= 0.999) in about a third
    of the time per query. The export is made once per machine into ``onnx_cache_dir`` (default
    ``~/.cache/semantic-catalog/onnx``); when it cannot be made (onnx or onnxruntime missing, a folder
    that cannot be written, a model the export does not support) the encoder logs why and uses torch.
    ``"torch"`` and ``"onnx"`` force one (``"onnx"`` raises instead of falling back).

    With the ONNX backend, search queries are encoded with the export's int8 weights (``model.int8.onnx``,
    about 2 ms faster per query on a small CPU) when the export's check found them close to fp32 (cosine
    >= ``INT8_QUERY_FIDELITY`` on probe queries); documents are always encoded in fp32, so stored vectors
    never change. ``int8_queries``: None (default) = when the check passed, False = never, True = always.
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
        backend: str = "auto",
        onnx_cache_dir: str | None = None,
        int8_queries: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("SentenceTransformerEncoder batch_size must be at least 1.")
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"SentenceTransformerEncoder backend must be one of {', '.join(BACKENDS)}, got {backend!r}."
            )
        if int8_queries not in (None, True, False):
            raise ConfigurationError(
                f"SentenceTransformerEncoder int8_queries must be None, True or False, got {int8_queries!r}."
            )
        if int8_queries and backend == "torch":
            raise ConfigurationError(
                "SentenceTransformerEncoder int8_queries=True needs the ONNX export: use backend 'auto' or 'onnx'."
            )
        self.model_ref = model
        self.device = device
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.num_threads = num_threads
        self.half = half
        self.backend = backend
        self.onnx_cache_dir = onnx_cache_dir
        self.int8_queries = int8_queries
        self.name = name or (model.rstrip("/").split("/")[-1] if model else BUNDLED_MODEL_NAME)
        self._runner: Any = None
        self._lock = threading.Lock()

    @property
    def runner(self) -> Any:
        """What encodes: the loaded SentenceTransformer (torch) or an OnnxEncoder; loaded once, thread-safe."""
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self._load()
        return self._runner

    @property
    def backend_in_use(self) -> str:
        """``"torch"`` or ``"onnx"``: what ``backend`` resolved to (loads the model)."""
        return "torch" if self._uses_torch(self.runner) else "onnx"

    @property
    def query_precision(self) -> str:
        """``"int8"`` or ``"fp32"``: the weights search queries are encoded with (loads the model)."""
        runner = self.runner
        return "fp32" if self._uses_torch(runner) or runner.query_file == runner.file else "int8"

    @staticmethod
    def _uses_torch(runner: Any) -> bool:
        return not isinstance(runner, Encoder)

    def _load(self) -> Any:
        if self.backend == "onnx" or (self.backend == "auto" and self._onnx_suits()):
            try:
                return self._load_onnx()
            except ConfigurationError as exc:
                if self.backend == "onnx":
                    raise
                logger.warning("%s: using torch, the ONNX export is not available: %s", self.name, exc)
            except OSError as exc:  # the cache folder cannot be written
                if self.backend == "onnx":
                    raise ConfigurationError(f"Cannot write the ONNX export of {self.name!r}: {exc}") from exc
                logger.warning("%s: using torch, the ONNX export could not be written: %s", self.name, exc)
        return self._load_torch()

    def _onnx_suits(self) -> bool:
        """On a CPU, with onnxruntime, onnx and tokenizers installed; never asked for half precision."""
        if self.half or (self.device or "auto") not in ("auto", "cpu"):
            return False
        if not all(importlib.util.find_spec(package) for package in ("onnxruntime", "onnx", "tokenizers")):
            logger.info("%s: onnxruntime, onnx or tokenizers is missing, using torch", self.name)
            return False
        if self.device == "cpu":
            return True
        import torch

        return not torch.cuda.is_available()

    def _load_onnx(self) -> Encoder:
        from semantic_catalog.engine.encoders.onnx import INT8_MODEL_FILE, MODEL_FILE, OnnxEncoder
        from semantic_catalog.engine.encoders.onnx_export import cached_export

        folder = cached_export(self.model_ref, self.onnx_cache_dir)
        encoder = OnnxEncoder(
            folder,
            name=self.name,
            batch_size=self.batch_size,
            num_threads=self.num_threads,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
            file=MODEL_FILE,
        )
        int8 = self.int8_queries
        if int8 is None:
            int8 = bool(encoder.config.get("int8_queries"))
            if not int8:
                cosine = encoder.config.get("int8_query_cosine")
                logger.info("%s: queries in fp32, int8 weights move them too far (cosine %s)", self.name, cosine)
        if int8:
            encoder.query_file = INT8_MODEL_FILE
        return encoder

    def _load_torch(self) -> Any:
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
            with quiet_model_loading():
                model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise ConfigurationError(f"Cannot load sentence-transformers model {path!r}: {exc}") from exc
        if self.half or (self.half is None and str(model.device).startswith("cuda")):
            model.half()
        return model

    @property
    def dimension(self) -> int:
        runner = self.runner
        if not self._uses_torch(runner):
            return runner.dimension
        getter = getattr(runner, "get_embedding_dimension", None) or runner.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: list[str]) -> np.ndarray:
        runner = self.runner
        if not self._uses_torch(runner):
            return runner._encode(texts)  # it adds the document prompt itself
        if self.document_prompt:
            texts = [self.document_prompt + t for t in texts]
        return runner.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        runner = self.runner
        if not self._uses_torch(runner):
            return runner.text_lengths(texts)
        tokenizer = getattr(runner, "tokenizer", None)
        if tokenizer is None:  # a model without a Hugging Face tokenizer: characters
            return super().text_lengths(texts)
        return [len(ids) for ids in tokenizer(list(texts), truncation=True)["input_ids"]]

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        runner = self.runner
        if not self._uses_torch(runner):
            return runner.encode_queries(texts)  # its query file (int8 or fp32) and prompts
        if not self.query_prompt or not texts:
            return super().encode_queries(texts)
        prompted = [self.query_prompt + t for t in texts]
        vectors = runner.encode(prompted, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)
