// Package auth is the per-member side of etcd-compatible authentication:
// password hashes and the tokens an authenticated client carries.
//
// What users, roles and permissions exist is replicated state and lives in
// store; this package holds what each member keeps on its own:
//
//  1. Passwords hashes passwords with bcrypt before they are proposed (so no
//     plain password reaches the Raft log) and checks a password against a
//     stored hash. A check for an unknown user compares against a dummy hash
//     of the same cost, so the time it takes does not tell which users exist.
//  2. NewTokens parses --auth-token ("simple", or "jwt,sign-method=...,
//     priv-key=...,pub-key=...,ttl=...") into Tokens. A simple token is a
//     random prefix chosen by the proposing member plus the log index of the
//     Authenticate entry; every member assigns it while applying that entry
//     (Tokens implements store.TokenIssuer), so it is valid on all of them
//     until it has not been used for --auth-token-ttl, its user is deleted or
//     changes password, or auth is disabled. A JWT carries its user and the
//     auth revision it was issued at, signed, and expires after its ttl.
//
// A token that fails is answered with etcd's "invalid auth token", on which
// clientv3 authenticates again and retries.
package auth
