// node-postgres (npm `pg`) against Tally's SQL API: a simple query, a parameterised one
// (extended protocol) and a named prepared statement run twice; prints one JSON object for
// tests/sqlapi/test_real_clients.py. Any error exits non-zero with the message on stderr.
const { Client } = require("pg");

async function main() {
  const client = new Client({ connectionString: process.argv[2] });
  await client.connect();
  const simple = await client.query("SELECT account__plan, revenue FROM metrics ORDER BY 1");
  const params = await client.query(
    "SELECT metric_time__year, account__plan, new_accounts FROM metrics " +
      "WHERE account__plan = $1 ORDER BY 1 LIMIT $2",
    ["pro", 3],
  );
  const named = { name: "plans", text: "SELECT DISTINCT account__plan FROM metrics ORDER BY 1" };
  const first = await client.query(named);
  const second = await client.query(named);
  await client.end();
  console.log(
    JSON.stringify({
      simple: simple.rows.map((r) => [r.account__plan, r.revenue]),
      simple_types: simple.fields.map((f) => f.dataTypeID),
      params: params.rows.map((r) => [r.metric_time__year, r.account__plan, r.new_accounts]),
      plans: first.rows.map((r) => r.account__plan),
      plans_again: second.rows.map((r) => r.account__plan),
    }),
  );
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
