"""Alignment rounds on human feedback: models, registry, generation, TRL stages and the `rlhf` command."""
