SELECT a.id, a.plan, COUNT(e.event_id) AS events, SUM(e.revenue) AS revenue
FROM main.accounts a
LEFT JOIN main.events e ON e.account_id = a.id
GROUP BY a.id, a.plan
