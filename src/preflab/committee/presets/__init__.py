"""Built-in committee presets (TOML)."""
