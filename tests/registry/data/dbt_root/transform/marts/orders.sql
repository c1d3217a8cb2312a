select order_id, customer_id, ordered_at, order_total, is_food_order from {{ ref('stg_orders') }}
