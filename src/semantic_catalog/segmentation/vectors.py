"""The items' vectors for an embedding-first run: read from the index's active collection (the vectors
search already uses), never encoded again, one row per item in the run's order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.engine.documents import StoredRecord
from semantic_catalog.engine.errors import NotIndexedYet
from semantic_catalog.indexes import SemanticIndex

SHOWN = 10  # ids named in an error message


def require_vectors(index: SemanticIndex, ids: Sequence[str]) -> None:
    """NotIndexedYet unless every id has a vector in the index (reads the ids only, not the vectors)."""
    _stored(index, ids, with_vectors=False)


def stored_vectors(index: SemanticIndex, ids: Sequence[str]) -> np.ndarray:
    """A (len(ids), dimension) array of the stored vectors; NotIndexedYet names the ids without one."""
    found = _stored(index, ids, with_vectors=True)
    return np.vstack([np.asarray(found[key].vector, dtype=np.float32) for key in ids])


def _stored(index: SemanticIndex, ids: Sequence[str], *, with_vectors: bool) -> dict[str, StoredRecord]:
    collection = active_collection(index)
    if collection is None:
        raise NotIndexedYet(
            f"Index {index.name!r} has no vectors yet: run `manage.py semantic_index --index {index.name}` "
            'first, or segment with mode "full".'
        )
    found = get_store().fetch(collection.table, list(ids), with_vectors=with_vectors)
    missing = [key for key in ids if key not in found or (with_vectors and found[key].vector is None)]
    if missing:
        more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        raise NotIndexedYet(
            f"{len(missing)} of the {len(ids)} items have no vector in index {index.name!r} yet "
            f"({', '.join(missing[:SHOWN])}{more}): let the sync catch up (`manage.py semantic_sync`) or "
            'run `semantic_index`, then start again; or segment with mode "full".'
        )
    return found
