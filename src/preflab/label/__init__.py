"""AI-feedback labeling (RLAIF): prompts, label tokens, soft labels."""
