"""The answer a run gives: diffusion vs AR speedups with intervals, speed at equal accuracy, AUP, crossover,
per-seed spread, batch invariance, and the tidy tables `dgbench export` writes.

Results-level code: it reads point records (dicts from points.jsonl), never torch, so the console, the HTML
report, report.json and the export all call the same functions and print the same numbers.
"""
