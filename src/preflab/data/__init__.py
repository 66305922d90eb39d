"""Preference data: the pair model, readers, writers, statistics and demo data."""
