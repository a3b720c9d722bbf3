"""pytest fixtures: jupyter (being built)."""
