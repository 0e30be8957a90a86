"""Where the drain task lived before ``sync/``: drains queued by an older release in a database-backed
tasks queue name ``semantic_catalog.tasks.drain_outbox``, so that path keeps resolving."""

from semantic_catalog.sync.tasks import drain_outbox

__all__ = ["drain_outbox"]
