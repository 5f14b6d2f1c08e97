"""The ``agiflow-lab`` command line: ``db upgrade``, ``prompts push|pull``, ``keys create|list|revoke``."""
