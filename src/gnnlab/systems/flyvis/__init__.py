"""The fly visual system connectome (seed 002)."""
