// One write through a pgjdbc URL, as Keycloak makes them: the URL exactly as
// `pgfailover show uri --format jdbc` prints it (KC_DB_URL), user and password
// from the environment (KC_DB_USERNAME / KC_DB_PASSWORD), never argv.
//
//   PGF_JDBC_USER=app PGF_JDBC_PASSWORD=... \
//     java -cp /usr/share/java/postgresql.jar JdbcWrite.java 'jdbc:postgresql://...' note
//
// Keeps trying for PGF_RETRY_SECONDS (default 30) while no listed host accepts
// writes, as a connection pool would during a failover. Prints
// "wrote <note> port <port> in_recovery <bool> attempts <n>" and exits 0, or
// prints the last error and exits 1. Expects table jdbc_writes (note text).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

public class JdbcWrite {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: JdbcWrite URL NOTE");
      System.exit(2);
    }
    String url = args[0];
    String note = args[1];
    Properties props = new Properties();
    props.setProperty("user", System.getenv("PGF_JDBC_USER"));
    props.setProperty("password", System.getenv("PGF_JDBC_PASSWORD"));
    long retryMs = 1000L * Integer.parseInt(System.getenv().getOrDefault("PGF_RETRY_SECONDS", "30"));
    long deadline = System.currentTimeMillis() + retryMs;
    SQLException last = null;
    int attempts = 0;
    while (true) {
      attempts++;
      try (Connection c = DriverManager.getConnection(url, props);
           PreparedStatement ps = c.prepareStatement(
               "INSERT INTO jdbc_writes (note) VALUES (?) RETURNING inet_server_port(), pg_is_in_recovery()")) {
        ps.setString(1, note);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          System.out.println("wrote " + note + " port " + rs.getInt(1) + " in_recovery " + rs.getBoolean(2)
              + " attempts " + attempts);
        }
        return;
      } catch (SQLException e) {
        last = e;
      }
      if (System.currentTimeMillis() > deadline) break;
      Thread.sleep(200);
    }
    System.err.println("no write through " + url + " after " + attempts + " attempts: " + last.getMessage());
    System.exit(1);
  }
}
