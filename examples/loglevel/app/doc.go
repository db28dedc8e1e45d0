// Command app is a stand-in for a Spring Boot application with the actuator
// loggers endpoint, for tend's log-level example: its log levels change
// live, over HTTP, without a restart.
//
//  1. It keeps a logback-style tree of loggers: ROOT (configured INFO), the
//     loggers named by --loggers and their dotted ancestors. A logger's
//     effective level is its configured level, else its nearest ancestor's.
//     With --levels DIR, each file in DIR named after a logger sets its
//     starting level (its content; empty means inherit), as Spring Boot
//     applies logging.level.* at start: the levels an agent last rendered
//     survive a restart of the app.
//  2. GET /actuator/loggers answers {"levels":[...],"loggers":{...},
//     "groups":{}} as Spring Boot does; GET /actuator/loggers/{name}
//     answers one logger, 404 for an unknown one; ROOT matches any case.
//  3. POST /actuator/loggers/{name} with {"configuredLevel":"DEBUG"} sets
//     the level (any case) and answers 204; null or a missing
//     configuredLevel resets it to inherit (ROOT back to INFO); an unknown
//     level is 400. A new name creates the logger, as logback does.
//  4. Every --interval it prints, for each logger of --loggers, one DEBUG
//     and one INFO line to stdout, each only if the logger's effective level
//     lets it through, in logback's pattern "time LEVEL logger - message".
//  5. SIGTERM or SIGINT stops it with status 0.
package main
