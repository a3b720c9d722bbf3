"""pytest fixtures: sandbox (being built)."""
