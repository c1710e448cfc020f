// A small JVM service: an HTTP server on :8080 and a shutdown hook, the way JVM applications
// (Spring, Quarkus, plain Java) stop: on SIGTERM the JVM runs its shutdown hooks, then exits with
// 143 (128 + 15). Run from source (`java Server.java`): Debian's headless JRE has no javac but does
// carry the compiler module the source launcher uses.
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

public class Server {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(8080), 0);
        server.createContext("/", exchange -> {
            byte[] body = "ok\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("shutdown hook: stopping the HTTP server");
            server.stop(1);
            System.out.println("shutdown hook: done");
        }));
        server.start();
        System.out.println("listening on :8080");
    }
}
