"""From one dyno to a shop's fleet: session records, measured patterns, Parquet export, queries.

Nothing here is imported by the engine's hot path; pyarrow and duckdb are imported
inside the functions that need them, so ``import core`` stays light.
"""
