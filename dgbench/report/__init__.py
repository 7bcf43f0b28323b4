"""Formatting of results: the end-of-run console tables (console.py), the HTML report and comparison site
(html.py, compare.py), its markdown summary (markdown.py) and the publish index (publish.py). Reads results
files only, never torch."""
