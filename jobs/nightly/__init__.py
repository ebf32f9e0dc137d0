"""The nightly batch: compaction and retention, gold tables (daily stats, health scores, pipeline ledger)."""
