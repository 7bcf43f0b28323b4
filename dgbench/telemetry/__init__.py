"""Trackers: timing, memory, (later) NVML and CPU telemetry. Context managers returning dataclasses."""
