"""Formatting of results: console tables now, HTML reports later. Reads results only, never torch."""
