"""Scenarios: how a suite's points are laid out and measured."""
