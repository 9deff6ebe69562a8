"""Planning: constraints, candidate tests, test models, the planner, learning, pull detection, the tracker."""
