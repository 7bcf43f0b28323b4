"""Hardware profiles (hardware_profiles/*.yaml), device detection and the run's hardware fingerprint."""
