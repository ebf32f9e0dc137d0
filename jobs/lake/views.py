"""Views in Trino's `vigil` catalog for the questions analysts ask most; created idempotently.

The lake writer creates the bronze/silver views at start, the nightly batch the
gold ones once its tables exist. Columns are documented in docs/queries.md.
"""

from __future__ import annotations

from typing import Final

from infra.settings import InfraSettings
from jobs.lake.catalog import connect

VIEWS: Final[dict[str, str]] = {
    "silver.latest_reading": """
        SELECT sensor_id, asset_id, site, location_on_machine, quantity, unit, value, quality, t, t_us,
               received_at, package_id
        FROM (SELECT r.*, row_number() OVER (PARTITION BY sensor_id ORDER BY t_us DESC, sample_index DESC) AS n
              FROM silver.readings r)
        WHERE n = 1""",
    "silver.hourly_readings": """
        SELECT sensor_id, asset_id, site, quantity, unit, date_trunc('hour', t) AS hour,
               count(*) AS samples, min(value) AS min, max(value) AS max, avg(value) AS avg,
               stddev_samp(value) AS stddev, sqrt(avg(value * value)) AS rms
        FROM silver.readings
        GROUP BY sensor_id, asset_id, site, quantity, unit, date_trunc('hour', t)""",
    "silver.open_alerts": """
        SELECT asset_id, site, sensor_id, gateway_id, rule, severity, source, message, value, threshold,
               raised_at AS opened_at, current_timestamp - raised_at AS open_for, episode_id
        FROM (SELECT a.*, row_number() OVER (PARTITION BY episode_id ORDER BY raised_at DESC,
                                             CASE state WHEN 'close' THEN 1 ELSE 0 END DESC) AS n
              FROM silver.alerts a)
        WHERE n = 1 AND state = 'open'""",
    "silver.freshness": """
        SELECT p.sensor_id, p.asset_id, p.site, p.quantity, max(p.last_t) AS last_sample,
               max(p.received_at) AS last_received, max(p.processed_at) AS last_processed,
               current_timestamp - max(p.received_at) AS since_last_received
        FROM silver.packages p
        GROUP BY p.sensor_id, p.asset_id, p.site, p.quantity""",
    "bronze.deadletter_daily": """
        SELECT rejected_date AS date, source_topic, stage, reason, count(*) AS messages,
               count(DISTINCT gateway_id) AS gateways, min(rejected_at) AS first, max(rejected_at) AS last
        FROM bronze.deadletter
        GROUP BY rejected_date, source_topic, stage, reason""",
}

GOLD_VIEWS: Final[dict[str, str]] = {
    "gold.machine_health_latest": """
        SELECT asset_id, site, machine_kind, date, score, rank, healthy, worst_quantity, worst_feature, basis,
               episode_id,
               (SELECT min(e.date) FROM gold.health_scores e
                WHERE e.site = l.site AND e.asset_id = l.asset_id AND e.episode_id = l.episode_id) AS unhealthy_since
        FROM (SELECT h.*, row_number() OVER (PARTITION BY site, asset_id ORDER BY date DESC) AS n
              FROM gold.health_scores h) l
        WHERE n = 1""",
}


def create_views(settings: InfraSettings, views: dict[str, str] = VIEWS) -> list[str]:
    """CREATE OR REPLACE each view (its tables must be registered); return the names created."""
    created = []
    with connect(settings) as connection:
        cursor = connection.cursor()
        for name, sql in views.items():
            cursor.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")  # our own constant SQL
            cursor.fetchall()
            created.append(name)
    return created
