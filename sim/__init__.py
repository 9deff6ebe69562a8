"""The engine + dyno simulator: vehicle models, scenarios and the ``sim:`` source."""
