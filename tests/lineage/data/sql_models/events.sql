-- The demo's events table, as a transformation over the raw tracking feed.
CREATE TABLE main.events AS
WITH deduped AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_uuid ORDER BY loaded_at) AS copy_no
    FROM raw.tracking_events
)
SELECT
    event_uuid AS event_id,
    user_id,
    account_id,
    anonymous_id,
    LOWER(event_name) AS event_type,
    client_ts AS occurred_at,
    loaded_at AS received_at,
    CASE WHEN event_name IN ('purchase', 'plan_upgraded') THEN amount_cents / 100.0 END AS revenue,
    properties
FROM deduped
WHERE copy_no >= 1
