// Command app is a stand-in for a Spring Boot application in tend's examples:
// it reads application.yml the way Spring Boot does and shows what it loaded.
//
//  1. It reads the file named by --config (default application.yml) and
//     flattens it into Spring Boot property names: nested keys joined with
//     dots (server.port), list items as name[index] (app.hosts[0]), every
//     value as its YAML text. Documents separated by --- are read in order;
//     a later one overrides an earlier one (profiles are not modelled).
//  2. A malformed file, or one whose top level is not a mapping, ends it
//     with status 1 and a message naming the file, line and fix, as a Spring
//     Boot application refuses to start.
//  3. It serves HTTP on --address (default 127.0.0.1) and the port from
//     server.port, which --port overrides (Spring Boot's default 8080 when
//     neither is set; 0 picks a free port, printed on start).
//  4. GET /loaded answers JSON: the properties, the file, the pid and the
//     start time, so a test or a person sees exactly what this process
//     started with. A restart shows up as a new pid and start time.
//  5. With --check it stops after steps 1 and 2 (and the port check),
//     exiting 0 for a good file: tend's template check command.
//  6. SIGTERM or SIGINT shuts the server down and exits with status 0.
package main
