"""Rounds as tracked jobs: the Round row's lifecycle and the process that runs a recipe."""
