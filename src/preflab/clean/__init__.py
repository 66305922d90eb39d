"""Cleaning: turn an audit into decisions (keep, flip, remove, relabel) and apply them."""
