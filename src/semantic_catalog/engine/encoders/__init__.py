"""Encoders: text -> L2-normalised float32 vectors. Heavy backends import their libraries lazily."""

from .base import Encoder, normalise
from .sentence_transformers import BUNDLED_MODEL_NAME, SentenceTransformerEncoder

__all__ = ["BUNDLED_MODEL_NAME", "Encoder", "SentenceTransformerEncoder", "normalise"]
