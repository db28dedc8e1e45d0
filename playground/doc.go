// Package playground draws a tend cluster live in a web page.
//
// Two backends feed one page (package web) through one HTTP server
// (Handler):
//
//   - Playground runs N real members in this process (real Raft, WAL,
//     peer transport with its fault seam) and lets the page write, read,
//     kill, restart, isolate, split, heal, add (as voters or learners),
//     promote and remove members, and slow the cluster's clock down;
//   - Dashboard watches any running tend or etcd cluster through clientv3
//     only, read-only, and with a fleet prefix the status the agents
//     publish there (package fleet reads it).
//
// Both publish to a Hub, which owns what the page sees and fans it out to
// every open page over Server-Sent Events (GET /api/events):
//
//  1. a subscriber first gets the current state, the timeline so far, the
//     keyspace, the recent watch events and, once a dashboard has read its
//     fleet prefix, the fleet, in that order;
//  2. then every change, in the order the Hub received it: "state" (the
//     members, about ten times a second), "msgs" (sampled Raft messages),
//     "watch" (keyspace events), "timeline" (elections, leader changes and
//     what people did), "fleet" (every host and template counted, the
//     first 500 rows sent, the failed first; at most four events a second,
//     so a rollout that updates thousands of hosts at once goes out in a
//     few);
//  3. a subscriber that falls behind is dropped; the browser's EventSource
//     reconnects and starts again at step 1.
//
// Actions are POST /api/<action> with a JSON body, answered with JSON.
package playground
