"""Telemetry: timing, memory, CPU and NVML (GPU power, clocks, utilisation) sources, sampled by one
recorder (recorder.py) into RUN_DIR/telemetry; energy is integrated from the power samples."""
