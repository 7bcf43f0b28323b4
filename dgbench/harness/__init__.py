"""Suite schema, sweep expansion, measurement loop, runner and resume."""
