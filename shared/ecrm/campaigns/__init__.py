"""Campaigns and journeys: A/B/n campaigns with a holdout, and triggered multi-step journeys."""
