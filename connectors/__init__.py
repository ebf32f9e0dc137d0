"""How data gets in and out of Vigil: gateway simulator and replay, ingest endpoints, alert subscribers."""
