"""Committees: the committee files, their members as scorers, and rewards of replies."""
