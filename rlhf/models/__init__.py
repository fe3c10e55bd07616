"""Policies on disk and in the registry: loading, building the tiny model, versions and their artifacts."""
