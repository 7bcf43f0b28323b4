"""dgbench serve: an OpenAI-compatible server over any dgbench decoder (needs the `serve` extra)."""
