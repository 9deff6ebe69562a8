"""Coverage: table axes, sample filters, the coverage grid, priority regions, exports and reports."""
