"""The build's SQL for accounts and users: the random-draw macros, accounts (with their
hierarchy), users, and how activity is allocated to users. Templates filled by
``semantic.demo.build``; every substituted value is an int or a literal of ``values``.
"""

# Conventions: *_us columns are epoch microseconds (BIGINT) until the final SELECT turns them
# into TIMESTAMPs; plan_idx is 0..3 into PLANS. _demo_u(a, b, salt) is a uniform double in
# [0, 1) and _demo_h(a, b, salt) a 64-bit hash, both pure functions of (seed, a, b, salt).
# The outer hash() matters: DuckDB combines multi-argument hashes by multiply-and-XOR, so
# hash(seed, a, b, 'x') and hash(seed, a, b, 'y') differ by a constant XOR and their top
# bits are strongly correlated (measured r ≈ 0.6: no late event was more than 21 hours late, and
# all child accounts came out on the free plan); re-hashing the combination removes it.

MACROS = """
CREATE OR REPLACE TEMP MACRO _demo_h(a, b, salt) AS
    hash(hash({seed}::BIGINT, a::BIGINT, b::BIGINT, salt));
CREATE OR REPLACE TEMP MACRO _demo_u(a, b, salt) AS
    (_demo_h(a, b, salt) >> 11)::DOUBLE / 9007199254740992.0;
CREATE OR REPLACE TEMP MACRO _demo_uuid(a, b, salt) AS
    ((_demo_h(a, b, salt || '.hi')::UHUGEINT << 64) | _demo_h(a, b, salt || '.lo'))::UUID::VARCHAR;
"""

# Accounts: ids are in sign-up order, so a parent (lower id) was always created first.
ACCOUNTS = """
CREATE OR REPLACE TEMP TABLE _demo_accounts AS
WITH draws AS (
    SELECT
        id,
        _demo_u(id, 0, 'account.kind') AS u_kind,
        _demo_u(id, 0, 'account.parent') AS u_parent,
        _demo_u(id, 0, 'account.weight') AS u_weight,
        _demo_u(id, 0, 'account.plan') AS u_plan,
        _demo_u(id, 0, 'account.region') AS u_region,
        _demo_u(id, 0, 'account.seats') AS u_seats,
        _demo_u(id, 0, 'account.churn') AS u_churn,
        _demo_u(id, 0, 'account.lifetime') AS u_lifetime,
        _demo_h(id, 0, 'account.industry') AS h_industry,
        -- Position on the sign-up curve; monotone in id, jittered within each id's slot.
        (id - 1 + _demo_u(id, 0, 'account.created')) / {accounts} AS x_created,
        -- Seeded permutation of the name combinations, unique within each block of ids.
        ((id - 1) % {n_names} * 1009 + {seed} % {n_names}) % {n_names} AS name_combo,
        (id - 1) // {n_names} AS name_block
    FROM range(1, {accounts} + 1) AS r(id)
),
shaped AS (
    SELECT
        *,
        -- Pareto(alpha=1.16), the "80/20" tail; the cap keeps one whale from owning a large
        -- share of a small build (uncapped, the biggest of 2,000 accounts had 40% of events).
        least(pow(1 - u_weight, -1 / 1.16), 250.0) AS weight,
        CASE WHEN u_kind < 0.08 THEN 1 WHEN u_kind < 0.26 THEN 2 WHEN u_kind < 0.31 THEN 3
             ELSE 0 END AS tier,
        {region_pick} - 1 AS region_idx,
        -- A launch cohort (15% of accounts) arrives in the first 30 days; after that sign-ups
        -- accelerate: the cumulative share by time t is 0.35t + 0.65t^2, inverted here. The
        -- last day is kept free so that every account lives at least a day.
        {start_us} + CASE WHEN x_created < 0.15
            THEN floor(x_created / 0.15 * 30 * {day_us})
            ELSE 30 * {day_us} + floor((-0.35 + sqrt(0.1225 + 2.6 * (x_created - 0.15) / 0.85))
                 / 1.3 * ({span_us} - 31 * {day_us}))
        END::BIGINT AS created_us
    FROM draws
),
ranked AS (
    SELECT
        *,
        -- Parents are drawn among earlier accounts: tier 2 under a tier-1 root, tier 3 under
        -- a tier-2 account, so the hierarchy has at most three levels and no cycles.
        -- (sum of a flag, not count(*) FILTER: DuckDB 2.0 evaluates a filtered window
        -- aggregate in quadratic time, 8 s for 100k rows.)
        sum((tier = 1)::BIGINT) OVER upto - (tier = 1)::BIGINT AS roots_before,
        sum((tier = 2)::BIGINT) OVER upto - (tier = 2)::BIGINT AS subs_before,
        CASE WHEN tier = 1 THEN sum((tier = 1)::BIGINT) OVER upto END AS root_rank,
        CASE WHEN tier = 2 THEN sum((tier = 2)::BIGINT) OVER upto END AS sub_rank,
        percent_rank() OVER (ORDER BY weight, id) AS weight_rank
    FROM shaped
    WINDOW upto AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
planned AS (
    SELECT
        c.*,
        CASE c.tier WHEN 2 THEN pr.id WHEN 3 THEN ps.id END AS parent_account_id,
        -- Bigger accounts buy bigger plans: the score mixes luck with the weight rank; the
        -- cut points split the triangular sum into 35% / 30% / 25% / 10%.
        CASE WHEN 0.5 * c.u_plan + 0.5 * c.weight_rank < 0.4183 THEN 0
             WHEN 0.5 * c.u_plan + 0.5 * c.weight_rank < 0.5817 THEN 1
             WHEN 0.5 * c.u_plan + 0.5 * c.weight_rank < 0.7764 THEN 2
             ELSE 3 END AS plan_idx
    FROM ranked AS c
    LEFT JOIN ranked AS pr
        ON c.tier = 2 AND c.roots_before > 0
        AND pr.root_rank = 1 + floor(c.u_parent * c.roots_before)::BIGINT
    LEFT JOIN ranked AS ps
        ON c.tier = 3 AND c.subs_before > 0
        AND ps.sub_rank = 1 + floor(c.u_parent * c.subs_before)::BIGINT
),
churned AS (
    SELECT
        *,
        created_us + 30 * {day_us}
            + floor(-ln(1 - u_lifetime) * 240 * {day_us})::BIGINT AS churn_candidate_us
    FROM planned
)
SELECT
    id,
    {adjectives}[1 + name_combo % {n_adjectives}] || ' '
        || {nouns}[1 + name_combo // {n_adjectives} % {n_nouns}] || ' '
        || {suffixes}[1 + name_combo // ({n_adjectives} * {n_nouns})]
        || CASE WHEN name_block > 0 THEN ' ' || (name_block + 1) ELSE '' END AS name,
    parent_account_id,
    plan_idx,
    region_idx,
    {industries}[1 + (h_industry % {n_industries})::BIGINT] AS industry,
    ({plan_seats_lo}[plan_idx + 1] + floor(u_seats * u_seats
        * ({plan_seats_hi}[plan_idx + 1] - {plan_seats_lo}[plan_idx + 1] + 1)))::INTEGER AS seats,
    created_us,
    CASE WHEN u_churn < {plan_churn}[plan_idx + 1] AND churn_candidate_us < {end_us}
         THEN churn_candidate_us END AS churned_us,
    -- Accounts stop producing events when they churn.
    coalesce(churned_us, {end_us}) AS active_end_us,
    weight
FROM churned
ORDER BY id
"""

# Users: one admin per account at its creation, then the remaining users handed out in
# proportion to account size × lifetime with the same telescoping allocation as events
# (an ASOF join on the cumulative weight is the textbook alternative, but in DuckDB 2.0 it
# did not finish within minutes for 10M probe rows against 500k weights).
USERS = """
CREATE OR REPLACE TEMP TABLE _demo_users AS
WITH weighted AS (
    SELECT
        id,
        greatest(1, round(weight * 1000
            * (0.2 + 0.8 * (active_end_us - created_us) / {span_us})))::BIGINT AS w
    FROM _demo_accounts
),
cumulative AS (
    SELECT
        id,
        sum(w) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_hi,
        w,
        sum(w) OVER () AS total
    FROM weighted
),
counted AS (
    SELECT
        id,
        (({users} - {accounts})::HUGEINT * cum_hi) // total
            - (({users} - {accounts})::HUGEINT * (cum_hi - w)) // total AS extra_users
    FROM cumulative
),
draws AS (
    SELECT
        a.*,
        r.j,
        _demo_u(a.id, r.j, 'user.signup') AS u_signup,
        _demo_u(a.id, r.j, 'user.role') AS u_role,
        _demo_u(a.id, r.j, 'user.activity') AS u_activity,
        _demo_u(a.id, r.j, 'user.country') AS u_country,
        _demo_h(a.id, r.j, 'user.name') AS h_name,
        lower(regexp_replace(a.name, '[^A-Za-z0-9]+', '-', 'g')) || '.example' AS domain
    FROM _demo_accounts AS a
    JOIN counted AS c ON c.id = a.id,
    range(1 + c.extra_users::BIGINT) AS r(j)
),
placed AS (
    SELECT
        *,
        -- The first user creates the account; later ones join, most of them early on.
        CASE WHEN j = 0
             THEN created_us + floor(u_signup * 10 * 60 * 1000000)::BIGINT
             ELSE created_us + floor(u_signup * u_signup
                  * (active_end_us - created_us - {hour_us}))::BIGINT
        END AS signup_us,
        CASE WHEN j = 0 OR u_role < 0.10 THEN 'admin'
             WHEN u_role < 0.75 THEN 'member' ELSE 'viewer' END AS role
    FROM draws
)
SELECT
    -- User ids follow sign-up order, as an auto-increment key would.
    row_number() OVER (ORDER BY signup_us, id, j) AS id,
    id AS account_id,
    {first_names}[1 + (h_name % {n_first_names})::BIGINT] || '.'
        || {last_names}[1 + (h_name // {n_first_names} % {n_last_names})::BIGINT] AS handle,
    domain,
    {countries}[region_idx + 1][
        1 + floor(u_country * len({countries}[region_idx + 1]))::BIGINT] AS country,
    role,
    signup_us,
    active_end_us,
    plan_idx,
    -- Per-user event rate: mildly heavy-tailed, higher for admins and paid plans.
    least(pow(1 - u_activity, -0.5), 50.0)
        * CASE role WHEN 'admin' THEN 1.5 WHEN 'member' THEN 1.0 ELSE 0.5 END
        * {plan_engagement}[plan_idx + 1] AS activity
FROM placed
ORDER BY id
"""

# Event allocation: each user's expected share is rate × active time. Telescoping floors over
# the exact integer cumulative weight hand out exactly {activity} events (and {duplicates}
# duplicates, proportionally to those), with no rounding drift and no thread dependence.
ALLOCATION = """
CREATE OR REPLACE TEMP TABLE _demo_alloc AS
WITH weighted AS (
    SELECT
        id AS user_id,
        account_id,
        plan_idx,
        signup_us,
        active_end_us,
        -- Units of 1/100 hour; signup is at least an hour before the end, so w >= 1.
        greatest(1, floor(activity * (active_end_us - signup_us) / 36000000))::BIGINT AS w
    FROM _demo_users
),
cumulative AS (
    SELECT
        *,
        sum(w) OVER (ORDER BY user_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_hi,
        sum(w) OVER () AS total
    FROM weighted
),
events_cum AS (
    SELECT
        *,
        ({activity}::HUGEINT * cum_hi) // total AS n_hi,
        ({activity}::HUGEINT * (cum_hi - w)) // total AS n_lo
    FROM cumulative
)
SELECT
    user_id,
    account_id,
    plan_idx,
    signup_us,
    active_end_us,
    (n_hi - n_lo)::BIGINT AS n_act,
    (({duplicates} * n_hi) // greatest({activity}, 1)
        - ({duplicates} * n_lo) // greatest({activity}, 1))::BIGINT AS n_dup
FROM events_cum
ORDER BY user_id
"""

# Events: expand users × their events (k = 0 is the signup) plus their re-deliveries, place
# each in time, sort on a narrow key, then derive the wide columns from (user, k), so that a
# re-delivery repeats its original's content.
