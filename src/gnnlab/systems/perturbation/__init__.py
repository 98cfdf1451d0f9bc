"""The gene-perturbation system: knock-downs whose effects propagate along a hidden regulatory network."""
