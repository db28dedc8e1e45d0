// Package freeport hands tests loopback TCP ports that were free a moment
// ago, for servers whose address must be known before they listen (an
// advertised URL, a flag of a child process, a peer list).
//
// Such a port can be taken by someone else before the server binds it;
// callers that start servers on it retry on other ports when the error is
// EADDRINUSE (see etcdtest and the cluster tests).
package freeport
