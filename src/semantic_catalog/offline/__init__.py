"""Catalog exports for the offline machine and validated imports of the vectors it computes."""
