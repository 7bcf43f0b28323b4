"""Quality tasks: loaders, prompt formats and scorers, registered by name."""

TASKS: dict = {}
