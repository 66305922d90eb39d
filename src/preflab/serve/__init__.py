"""HTTP servers: an OpenAI-compatible completion server for local models."""
