"""Human re-annotation of the pairs the committee doubts: a review project (SQLite),
the reviewer's web app, and the export of people's consensus and agreement."""
