"""The metabolic-network system: random reaction networks with mass-action kinetics and homeostasis."""
