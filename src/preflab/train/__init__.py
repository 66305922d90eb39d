"""Training recipes: reward models (and, later, aligned policies)."""
