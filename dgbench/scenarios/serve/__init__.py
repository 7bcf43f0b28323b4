"""The serve scenario: streamed load against OpenAI-compatible endpoints (config, prompts, load generator,
aggregates, sweep points). Needs no model: the endpoint under test does the decoding. Importing this
registers it (scenario.py)."""

from dgbench.scenarios.serve import scenario  # noqa: F401  (registration)
