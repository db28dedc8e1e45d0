// Command backend is a tiny web server for tend's nginx example: it answers
// every request with its name, so a test or a person sees which backend
// nginx sent a request to.
//
//  1. It listens on --address (default 127.0.0.1) and --port (0 picks a
//     free port; the address is printed on start).
//  2. GET /health answers 200 "ok" (the health check a registration uses);
//     every other request answers 200 "backend <name>\n" with the header
//     X-Backend: <name>.
//  3. SIGTERM or SIGINT stops it with status 0.
package main
