"""Vigil's stream stage: validate, dedupe, clock, quality, enrich, alerts (one module per stage)."""
