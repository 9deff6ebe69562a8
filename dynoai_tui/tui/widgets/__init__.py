"""Dashboard widgets: gauges, heatmap, strip charts and text panels."""
