"""pytest fixtures: services (being built)."""
