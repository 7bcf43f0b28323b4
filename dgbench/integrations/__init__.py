"""Integrations with other evaluation tools. lm_eval.py: dgbench's decoders as lm-evaluation-harness models.

Nothing here is imported by the rest of dgbench at start-up; each module imports its tool lazily.
"""
