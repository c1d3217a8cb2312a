"""The build's SQL for activity and billing: events, subscriptions, invoices, the final
tables, their comments and the day spine. Templates filled by ``semantic.demo.build``.
"""

# Events: expand users × their events (k = 0 is the signup) plus their re-deliveries, place
# each in time, sort on a narrow key, then derive the wide columns from (user, k), so that a
# re-delivery repeats its original's content.
EVENTS = """
INSERT INTO events
WITH expanded AS (
    -- Row i of a user is its event k = i (k = 0 is the signup) for i <= n_act; the n_dup
    -- rows after that re-deliver one event from each of n_dup equal strata of 1..n_act.
    -- Deriving k in closed form avoids a second lateral join, which DuckDB would decorrelate
    -- into a hash join over all rows.
    SELECT
        *,
        lo + floor(u_time * (active_end_us - lo))::BIGINT AS t0
    FROM (
        SELECT
            *,
            signup_us + 1000000 AS lo,
            _demo_u(user_id, k, 'event.time') AS u_time,
            _demo_h(user_id, k, 'event.shape') AS h_shape
        FROM (
            SELECT
                a.user_id, a.account_id, a.plan_idx, a.signup_us, a.active_end_us,
                CASE WHEN r.i <= a.n_act THEN r.i
                     ELSE 1 + (r.i - a.n_act - 1) * a.n_act // greatest(a.n_dup, 1)
                        + (_demo_h(a.user_id, r.i - a.n_act - 1, 'event.dup')
                           % greatest((r.i - a.n_act) * a.n_act // greatest(a.n_dup, 1)
                                      - (r.i - a.n_act - 1) * a.n_act // greatest(a.n_dup, 1),
                                      1))::BIGINT
                END AS k,
                (r.i > a.n_act)::BIGINT AS copy
            FROM _demo_alloc AS a, range(a.n_act + 1 + a.n_dup) AS r(i)
        )
    )
),
day_shaped AS (
    SELECT
        *,
        (h_shape & 1048575) / 1048576.0 AS u_hours,
        ((h_shape >> 20) & 1048575) / 1048576.0 AS u_tod,
        ((h_shape >> 40) & 1048575) / 1048576.0 AS u_weekend
    FROM expanded
),
hour_shaped AS (
    SELECT
        *,
        -- 70% of activity in 08:00-18:00 UTC, the rest around the clock; keep the uniform
        -- draw when the shaped time would fall outside the user's active interval.
        CASE WHEN t1_raw >= lo AND t1_raw < active_end_us THEN t1_raw ELSE t0 END AS t1
    FROM (
        SELECT
            *,
            t0 // {day_us} * {day_us} + t0 % 1000000
                + CASE WHEN u_hours < 0.7 THEN 8 * {hour_us} + floor(u_tod * 10 * {hour_us})
                       ELSE floor(u_tod * 24 * {hour_us}) END::BIGINT AS t1_raw
        FROM day_shaped
    )
),
week_shaped AS (
    SELECT
        *,
        -- Move most weekend draws to a weekday of the same week (or the next one when that
        -- would precede sign-up): Saturday shifts back 1-5 days, Sunday 2-6, landing Mon-Fri.
        CASE WHEN (t1 // {day_us} + 3) % 7 >= 5 AND u_weekend < {weekend_moved}
             THEN (t1 // {day_us} + 3) % 7 - 4 + floor(u_weekend / {weekend_moved} * 5)::BIGINT
             ELSE 0 END AS shift_days
    FROM hour_shaped
),
timed AS (
    SELECT
        user_id, account_id, plan_idx, k, copy,
        CASE WHEN k = 0 THEN signup_us
             WHEN shift_days = 0 THEN t1
             WHEN t1 - shift_days * {day_us} >= lo THEN t1 - shift_days * {day_us}
             WHEN t1 + (7 - shift_days) * {day_us} < active_end_us
                 THEN t1 + (7 - shift_days) * {day_us}
             ELSE t1 END AS occurred_us
    FROM week_shaped
),
ordered AS (
    -- Sorting only this narrow key keeps the 100M-row sort cheap; the full key is unique,
    -- so the order, and hence the table, is the same whatever the thread count.
    SELECT user_id, account_id, plan_idx, k, copy, occurred_us
    FROM timed
    ORDER BY occurred_us, user_id, k, copy
),
typed AS (
    SELECT
        *,
        CASE WHEN k = 0 THEN 0 ELSE {event_type_pick} END AS type_code,
        {source_pick} - 1 AS source_idx,
        CASE WHEN u_late < {late_share}
             THEN {hour_us} + floor(u_delay * (3 * {day_us} - 2 * {hour_us}))
             ELSE 200000 + least(floor(-ln(1 - u_delay) * 20000000), 600000000)
        END::BIGINT
            + copy * (1000000 + floor(u_redelivery * ({hour_us} - 1000000)))::BIGINT
            AS delay_us
    FROM (
        SELECT
            *,
            _demo_u(user_id, k, 'event.type') AS u_type,
            _demo_u(user_id, k, 'event.source') AS u_source,
            _demo_u(user_id, k, 'event.late') AS u_late,
            _demo_u(user_id, k, 'event.delay') AS u_delay,
            _demo_u(user_id, k, 'event.redelivery') AS u_redelivery,
            _demo_h(user_id, k, 'event.detail') AS h_detail
        FROM ordered
    )
)
SELECT
    _demo_uuid(user_id, k, 'event.id') AS event_id,
    user_id,
    account_id,
    -- Each user has 1-3 devices; the id is stable per (user, device).
    _demo_uuid(user_id, h_detail % (1 + _demo_h(user_id, 0, 'user.devices') % 3),
               'event.device') AS anonymous_id,
    CASE WHEN type_code = 0 THEN 'signup' ELSE {event_types}[type_code] END AS event_type,
    make_timestamp(occurred_us) AS occurred_at,
    make_timestamp(occurred_us + delay_us) AS received_at,
    (CASE type_code
        WHEN {purchase_code} THEN round(exp(ln(19) + ((h_detail >> 8) % 1000000) / 1e6
            * ln(50)), 2)
        WHEN {upgrade_code} THEN [29.0, 99.0, 299.0, 999.0][plan_idx + 1]
        ELSE 0 END)::DECIMAL(12, 2) AS revenue,
    {properties}[1 + plan_idx + 4 * source_idx + 16 * CASE WHEN type_code = {feature_code}
        THEN 1 + ((h_detail >> 32) % {n_features})::BIGINT ELSE 0 END] AS properties
FROM typed
"""

# Subscriptions: up to three consecutive ones per account, moving one plan step at a time
# towards the account's current plan; the last one ends at churn (or is still open).
SUBSCRIPTIONS = """
CREATE OR REPLACE TEMP TABLE _demo_subs AS
WITH accounts AS (
    SELECT
        id, plan_idx, seats, created_us, churned_us, active_end_us,
        CASE WHEN u_changes < 0.70 THEN 0 WHEN u_changes < 0.92 THEN 1 ELSE 2 END AS changes,
        u_direction, u_first, u_second, u_seats
    FROM (
        SELECT
            *,
            _demo_u(id, 0, 'sub.changes') AS u_changes,
            _demo_u(id, 0, 'sub.direction') AS u_direction,
            _demo_u(id, 0, 'sub.first') AS u_first,
            _demo_u(id, 0, 'sub.second') AS u_second,
            _demo_u(id, 0, 'sub.seats') AS u_seats
        FROM _demo_accounts
    )
),
steps AS (
    SELECT a.*, r.j, a.changes - r.j AS back
    FROM accounts AS a, range(a.changes + 1) AS r(j)
),
bounds AS (
    SELECT
        *,
        -- Change points at fixed fractions of the account's life, jittered, always ordered.
        created_us + floor((active_end_us - created_us) * CASE
            WHEN j = 0 THEN 0
            WHEN changes = 1 THEN 0.2 + 0.6 * u_first
            WHEN j = 1 THEN 0.1 + 0.4 * u_first
            ELSE 0.55 + 0.4 * u_second END)::BIGINT AS start_us,
        -- Mostly upgrades into the current plan (earlier plans are lower), else downgrades.
        CASE WHEN (u_direction < 0.8 AND plan_idx >= changes) OR plan_idx + changes > 3
             THEN plan_idx - back ELSE plan_idx + back END AS sub_plan_idx
    FROM steps
)
SELECT
    row_number() OVER (ORDER BY start_us, id, j) AS subscription_id,
    id AS account_id,
    sub_plan_idx,
    (CASE WHEN back = 0 THEN seats
          ELSE greatest(1, round(seats * (0.5 + 0.4 * u_seats))) END
        * {plan_seat_price}[sub_plan_idx + 1])::DECIMAL(12, 2) AS mrr,
    start_us,
    CASE WHEN back = 0 THEN churned_us
         ELSE lead(start_us) OVER (PARTITION BY id ORDER BY j) END AS end_us
FROM bounds
ORDER BY subscription_id
"""

# Invoices: one per started month of every paid subscription, numbered in issue order.
INVOICES = """
INSERT INTO invoices
WITH months AS (
    SELECT
        s.subscription_id, s.account_id, s.sub_plan_idx, s.mrr,
        make_timestamp(s.start_us) + to_months(r.m) AS issued_at,
        coalesce(s.end_us, {end_us}) AS stop_us
    FROM _demo_subs AS s,
        range(datediff('month', make_timestamp(s.start_us),
                       make_timestamp(coalesce(s.end_us, {end_us}))) + 2) AS r(m)
    WHERE s.mrr > 0
),
issued AS (
    SELECT
        *,
        _demo_u(subscription_id, epoch_us(issued_at), 'invoice.status') AS u_status,
        _demo_u(subscription_id, epoch_us(issued_at), 'invoice.delay') AS u_delay
    FROM months
    WHERE epoch_us(issued_at) < stop_us
),
paid AS (
    SELECT
        *,
        CASE WHEN u_status < 0.015 OR u_status >= 0.97 THEN NULL
             -- Most pay within ten days, a slow tail within six weeks.
             WHEN u_status < 0.85
                 THEN issued_at + to_microseconds(floor(u_delay * 10 * {day_us})::BIGINT)
             ELSE issued_at + to_microseconds(floor((10 + u_delay * 35) * {day_us})::BIGINT)
        END AS paid_candidate
    FROM issued
)
SELECT
    row_number() OVER (ORDER BY issued_at, subscription_id) AS invoice_id,
    account_id,
    subscription_id,
    issued_at,
    issued_at + to_days(CASE WHEN sub_plan_idx = 3 THEN 30 ELSE 14 END) AS due_at,
    CASE WHEN paid_candidate < make_timestamp({end_us}) THEN paid_candidate END AS paid_at,
    mrr AS amount,
    CASE WHEN u_status < 0.015 THEN 'void'
         WHEN paid_candidate < make_timestamp({end_us}) THEN 'paid'
         ELSE 'open' END AS status
FROM paid
ORDER BY invoice_id
"""

TABLES_DDL = """
DROP TABLE IF EXISTS accounts;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS subscriptions;
DROP TABLE IF EXISTS invoices;
DROP TABLE IF EXISTS time_spine;
CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL,
    parent_account_id BIGINT,
    plan VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    industry VARCHAR NOT NULL,
    seats INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    churned_at TIMESTAMP,
    tenant_id VARCHAR NOT NULL
);
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    email VARCHAR NOT NULL,
    country VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    signed_up_at TIMESTAMP NOT NULL
);
CREATE TABLE events (
    event_id VARCHAR NOT NULL,
    user_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    anonymous_id VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    revenue DECIMAL(12, 2) NOT NULL,
    properties JSON NOT NULL
);
CREATE TABLE subscriptions (
    subscription_id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    plan VARCHAR NOT NULL,
    mrr DECIMAL(12, 2) NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE TABLE invoices (
    invoice_id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    subscription_id BIGINT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    amount DECIMAL(12, 2) NOT NULL,
    status VARCHAR NOT NULL
);
"""

# Foreign keys are not declared: DuckDB checks them row by row on insert and they would block
# dropping tables on rebuild; the invariants they would express are covered by tests.
DIMENSIONS = """
INSERT INTO accounts
SELECT
    a.id, a.name, a.parent_account_id, {plans}[a.plan_idx + 1], {regions}[a.region_idx + 1],
    a.industry, a.seats, make_timestamp(a.created_us), make_timestamp(a.churned_us),
    -- The tenant is the root of the account's hierarchy (an enterprise and its sub-accounts),
    -- what row-level security in the demo filters on. Derived, so no random draw moves.
    't' || COALESCE(p.parent_account_id, a.parent_account_id, a.id)
FROM _demo_accounts AS a
LEFT JOIN _demo_accounts AS p ON p.id = a.parent_account_id
ORDER BY a.id;

INSERT INTO users
SELECT id, account_id, handle || id || '@' || domain, country, role, make_timestamp(signup_us)
FROM _demo_users
ORDER BY id;

INSERT INTO subscriptions
SELECT
    subscription_id, account_id, {plans}[sub_plan_idx + 1], mrr,
    make_timestamp(start_us), make_timestamp(end_us)
FROM _demo_subs
ORDER BY subscription_id;
"""

_TABLE_COMMENTS = {
    "accounts": "customer accounts; parent_account_id forms a 2-3 level hierarchy",
    "users": "people who signed up, each in one account; email is PII",
    "events": "product events; ~1% re-delivered duplicates share event_id, "
    "a few % arrive up to 3 days late",
    "subscriptions": "consecutive plan subscriptions per account",
    "invoices": "monthly invoices of paid subscriptions",
}
# The build parameters ride along in the catalog, so a warehouse says how it was made.
COMMENTS = "\n".join(
    f"COMMENT ON TABLE {table} IS 'Tally demo: {text} "
    "(seed={{seed}}, events={{events}}, end_date={{end_date}})';"
    for table, text in _TABLE_COMMENTS.items()
)

# The day-grain time spine the fixtures' `time_spine` model points at: every day of the
# history window, so cumulative and join_to_timespine metrics have a row per day, with the
# fiscal calendar's custom granularities (fixtures/time_spine.yml).
TIME_SPINE = """
CREATE TABLE time_spine (
    date_day DATE PRIMARY KEY,
    fiscal_year_start DATE NOT NULL,
    fiscal_quarter_start DATE NOT NULL
);
INSERT INTO time_spine
SELECT
    CAST(d AS DATE),
    -- The fiscal year starts on 1 February: shift back a month, truncate, shift forward.
    CAST(date_trunc('year', d - INTERVAL 1 MONTH) + INTERVAL 1 MONTH AS DATE),
    CAST(date_trunc('quarter', d - INTERVAL 1 MONTH) + INTERVAL 1 MONTH AS DATE)
FROM range(make_timestamp({start_us}), make_timestamp({end_us}), INTERVAL 1 DAY) AS t(d)
ORDER BY 1;
COMMENT ON TABLE time_spine IS 'Tally demo: one row per day of history (end_date={end_date})';
"""
