// Main logs a DEBUG and an INFO line through SLF4J and logback, over and
// over, so tend's log-level example can show a level change taking effect
// without a restart: logback re-reads logback.xml (scan="true") and the
// DEBUG lines appear or vanish.
//
// Build and run (Debian: default-jdk-headless, libslf4j-java,
// liblogback-java):
//
//   CP=/usr/share/java/slf4j-api.jar:/usr/share/java/logback-core.jar:/usr/share/java/logback-classic.jar
//   javac -cp "$CP" -d build Main.java
//   java -cp "$CP:build" -Dlogback.configurationFile=logback.xml Main 200
//
// The argument is the pause between rounds in milliseconds (default 200).
// The loggers are com.example.orders and com.example.payments.

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class Main {
    public static void main(String[] args) throws InterruptedException {
        long pause = 200;
        if (args.length > 0) {
            try {
                pause = Long.parseLong(args[0]);
            } catch (NumberFormatException e) {
                System.err.println("Main: pause \"" + args[0] + "\" is not a number of milliseconds (try 200)");
                System.exit(2);
            }
        }
        Logger[] loggers = {
            LoggerFactory.getLogger("com.example.orders"),
            LoggerFactory.getLogger("com.example.payments"),
        };
        System.out.println("Main: logging every " + pause + "ms");
        System.out.flush();
        for (long n = 1; ; n++) {
            for (Logger log : loggers) {
                log.debug("debug line {}", n);
                log.info("info line {}", n);
            }
            Thread.sleep(pause);
        }
    }
}
