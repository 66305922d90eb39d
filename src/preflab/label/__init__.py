"""AI-feedback labeling (RLAIF): label pairs with an LLM judge and measure agreement."""
