"""The query service for Django: search, similar and recommend over ``engine.search``, hydrated from SQL.

```python
from semantic_catalog.search import search, similar, recommend

search("products", "cordless drill", mode="hybrid", filters={"price__lte": 100}, limit=10)
```
"""

from semantic_catalog.search.service import ObjectNotFound, Result, recommend, search, similar

__all__ = ["ObjectNotFound", "Result", "recommend", "search", "similar"]
