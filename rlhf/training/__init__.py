"""Alignment rounds: the recipe, its TRL stages, their configs and the evaluation that gates a round."""
