"""`dgbench gate`'s machinery, torch-free: rules (the one comparison engine, also behind the report's
comparison page), baselines (named runs kept in a folder), outputs (markdown, JUnit, JSON, console) and
power (error rates of the rules on simulated repetitions)."""
