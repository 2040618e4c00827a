package fieldcrypt.testserver;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * mongo-java-server (memory backend) for fieldcrypt's integration tests.
 *
 * <p>The stock server reports wire version 7 (MongoDB 4.0), which the drivers of Mongoose 8 and 9
 * refuse; this one reports MongoDB 6.0, wire version 17. It listens on 127.0.0.1 only, on the port
 * given as the first argument (default 0: a free port), and prints one line, "READY &lt;mongodb
 * uri&gt;", to stdout once it accepts connections. It stops on SIGINT/SIGTERM, or when its stdin
 * closes, so it never outlives the test run that started it.
 */
public final class Main {
  private static final String HOST = "127.0.0.1";

  /** MongoDB 6.0: wire version 17. */
  private static final MongoVersion MONGO_6_0 =
      new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
          return List.of(6, 0, 0);
        }

        @Override
        public int getWireVersion() {
          return 17;
        }
      };

  private Main() {}

  public static void main(String[] args) throws IOException {
    // Before the first logger exists: warnings and errors only, on stderr.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");

    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    MongoServer server = new MongoServer(new MemoryBackend().version(MONGO_6_0));
    server.bind(HOST, port);
    // SIGINT/SIGTERM and System.exit() run this.
    Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "shutdown"));

    InetSocketAddress address = server.getLocalAddress();
    System.out.println("READY mongodb://" + HOST + ":" + address.getPort() + "/");
    System.out.flush();

    // Stop when stdin closes (the process that started the server is gone).
    InputStream in = System.in;
    byte[] buffer = new byte[256];
    while (in.read(buffer) >= 0) {
      // Nothing is ever written; keep reading until EOF.
    }
    System.exit(0);
  }
}
