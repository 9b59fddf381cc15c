"""Insight: point-in-time features, risk models with honest model cards, and cohorts."""
