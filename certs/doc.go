// Package certs holds TLS certificates for members and agents alike: a key pair and a trusted
// CA bundle read from PEM files, re-read when the files change on disk, and
// the tls.Configs that serve and dial with them.
//
//  1. Load reads and checks the files once; every error names the file and
//     what is wrong with it, so a bad path or a malformed file stops the
//     member at start.
//  2. Each TLS handshake afterwards asks the Source for its current
//     material. The Source compares each file's modification time, size and
//     inode with what it last read (a stat per file, cheap next to a
//     handshake) and reads them again when one changed. A rotation that
//     fails to parse (a half-written file, a key that does not match) keeps
//     the material in use and logs the error once per change.
//  3. ServerConfig verifies clients' certificates against the current CA
//     bundle when asked to (GetConfigForClient); ClientConfig presents the
//     current key pair (GetClientCertificate) and verifies servers against
//     the current bundle (VerifyConnection), so both directions pick up a
//     rotated certificate or CA on their next connection. Connections
//     already open keep the certificates they were made with.
//
// SelfSigned writes the self-signed key pair of etcd's --auto-tls and
// --peer-auto-tls. Every configuration has TLS 1.2 as its minimum.
package certs
