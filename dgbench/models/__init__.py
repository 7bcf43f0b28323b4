"""Model specs (real architectures, cited numbers), synthetic-weight builders and local-checkpoint loading."""
