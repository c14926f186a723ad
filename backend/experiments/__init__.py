"""A/B experiments: definitions, deterministic bucketing and the statistics of a report.

Pure logic only (no HTTP, no SQL): ``services.experiments`` orchestrates it.
"""
