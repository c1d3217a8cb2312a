// Drives Tally's SQL API with pgjdbc as DBeaver, Metabase and Tableau do; prints what it
// read as key=value lines for tests/sqlapi/test_real_clients.py to compare. Any exception
// ends the program with a non-zero status and its stack trace on stderr.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class TallyJdbcCheck {
    static int count(ResultSet rs) throws Exception {
        int n = 0;
        while (rs.next()) {
            n++;
        }
        rs.close();
        return n;
    }

    static String rows(ResultSet rs) throws Exception {
        ResultSetMetaData meta = rs.getMetaData();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> cells = new ArrayList<>();
            for (int i = 1; i <= meta.getColumnCount(); i++) {
                Object value = rs.getObject(i);
                cells.add(value == null ? "null" : value.toString());
            }
            out.add(String.join("|", cells));
        }
        rs.close();
        return String.join(";", out);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            // Dashboards repeat one prepared query on a pooled connection: past
            // prepareThreshold (5) pgjdbc server-prepares it and reads binary results.
            String sql = "SELECT metric_time__month, account__plan, revenue, new_accounts "
                + "FROM metrics WHERE account__plan <> ? ORDER BY 1, 2 LIMIT ?";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                String first = null;
                for (int i = 0; i < 10; i++) {
                    ps.setString(1, "free");
                    ps.setInt(2, 6);
                    String got = rows(ps.executeQuery());
                    if (first == null) {
                        first = got;
                    } else if (!first.equals(got)) {
                        throw new AssertionError("run " + i + " differs: " + got + " vs " + first);
                    }
                }
                System.out.println("prepared=" + first);
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT account__plan, new_accounts FROM metrics WHERE account__plan = ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setString(1, "pro");
                    String got = rows(ps.executeQuery());
                    if (i == 6) {
                        System.out.println("int8=" + got);
                    }
                }
            }
            DatabaseMetaData meta = conn.getMetaData();
            System.out.println("product=" + meta.getDatabaseProductName());
            System.out.println("catalogs=" + rows(meta.getCatalogs()));
            System.out.println("schemas=" + count(meta.getSchemas()));
            System.out.println("tables=" + rows(meta.getTables(null, "tally", "%", new String[] {"TABLE"})).split("\\|")[2]);
            System.out.println("columns=" + count(meta.getColumns(null, "tally", "metrics", "%")));
            System.out.println("primary_keys=" + count(meta.getPrimaryKeys(null, "tally", "metrics")));
            System.out.println("index_info=" + count(meta.getIndexInfo(null, "tally", "metrics", false, true)));
            System.out.println("imported_keys=" + count(meta.getImportedKeys(null, "tally", "metrics")));
            System.out.println("exported_keys=" + count(meta.getExportedKeys(null, "tally", "metrics")));
            System.out.println("functions=" + count(meta.getFunctions(null, "tally", "%")));
            System.out.println("procedures=" + count(meta.getProcedures(null, "tally", "%")));
            System.out.println("type_info=" + count(meta.getTypeInfo()));
            System.out.println("udts=" + count(meta.getUDTs(null, "tally", "%", null)));

            conn.setReadOnly(true);
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.setFetchSize(2);  // a portal read in pieces inside the transaction
                System.out.println("read_only=" + rows(st.executeQuery(
                    "SELECT account__plan FROM metrics GROUP BY 1 ORDER BY 1 LIMIT 3")));
            }
            conn.commit();
            conn.setAutoCommit(true);
            conn.setReadOnly(false);
            System.out.println("is_read_only=" + conn.isReadOnly());
        }
    }
}
