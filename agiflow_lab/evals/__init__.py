"""Evaluation runs: a prompt version x model x dataset version, scored by evaluators."""
