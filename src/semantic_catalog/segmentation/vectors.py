"""The items' vectors for an embedding-first run: read from the index's active collection (the vectors
search already uses), never encoded again, one row per item in the run's order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semantic_catalog.backends import get_store
from semantic_catalog.collections import active_collection
from semantic_catalog.engine.errors import NotIndexedYet
from semantic_catalog.indexes import SemanticIndex

SHOWN = 10  # ids named in an error message
FETCH_BATCH = 2000  # ids per store read: bounded memory and filter size


def stored_vectors(index: SemanticIndex, ids: Sequence[str]) -> np.ndarray:
    """A (len(ids), dimension) array of the stored vectors; NotIndexedYet names the ids without one."""
    collection = active_collection(index)
    if collection is None:
        raise NotIndexedYet(
            f"Index {index.name!r} has no vectors yet: run `manage.py semantic_index --index {index.name}` "
            'first, or segment with mode "full".'
        )
    store = get_store()
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), FETCH_BATCH):
        chunk = list(ids[start : start + FETCH_BATCH])
        records = store.fetch(collection.table, chunk, with_vectors=True)
        found.update({key: record.vector for key, record in records.items() if record.vector is not None})
    missing = [key for key in ids if key not in found]
    if missing:
        more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        raise NotIndexedYet(
            f"{len(missing)} of the {len(ids)} items have no vector in index {index.name!r} yet "
            f"({', '.join(missing[:SHOWN])}{more}): let the sync catch up (`manage.py semantic_sync`) or "
            'run `semantic_index`, then start again; or segment with mode "full".'
        )
    return np.vstack([np.asarray(found[key], dtype=np.float32) for key in ids])
