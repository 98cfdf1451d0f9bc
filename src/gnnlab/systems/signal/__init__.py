"""Neural signal-propagation networks (seed 003)."""
