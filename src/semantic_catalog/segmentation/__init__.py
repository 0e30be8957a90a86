"""LLM market segmentation for Django: runs as tasks, their tables' writes, the SQL call index (the
cache), the HTTP API, admin, commands and the import of `semantic-catalog segment` results."""
