"""Evaluation tooling: gold Q&A set, loaders and scoring."""
