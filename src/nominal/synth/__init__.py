"""Synthetic multi-agency population with ground truth (``nominal synth``)."""

from nominal.synth.generate import SynthSummary, generate

__all__ = ["SynthSummary", "generate"]
