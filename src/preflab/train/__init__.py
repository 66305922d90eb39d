"""Training recipes: reward models, SFT, DPO and its variants, best-of-N and RL."""
