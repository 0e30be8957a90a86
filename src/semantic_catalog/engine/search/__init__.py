"""The one query pipeline: query checks, query vectors (encoder + adapter + cache), retrieval, fusion,
plus evaluation on judged queries and query adapters learned from them."""
