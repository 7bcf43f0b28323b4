"""`dgbench gate`'s machinery, torch-free: rules (the one comparison engine, also behind the report's
comparison page), family (paired block ratios, Student's t, Holm, minimum detectable effect), baselines
(named runs kept in a folder), outputs (markdown, JUnit, JSON, console), interleave + measured
(`gate --measure`: worker processes per checkout, interleaved blocks, confirmation) and power (error
rates of the rules on simulated repetitions)."""
