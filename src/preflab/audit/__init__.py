"""Reliability audit: score pairs with a committee, count agreement with the labels, report."""
