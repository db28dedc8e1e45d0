// Package transport carries Raft messages between the members of a tend
// cluster over TCP, one listener per member on its peer URLs.
//
// Each member keeps, for each peer, one long-lived outgoing stream
// connection (so a pair of members holds two, one per direction):
//
//  1. The dialer opens the connection and sends a hello: the magic, the
//     connection's kind, the cluster ID, its own member ID and the ID it
//     expects to reach. The listener answers with a status byte (and a
//     reason when it refuses: another cluster, another member, a removed
//     sender).
//  2. Messages follow as frames: a uvarint length, then the marshalled
//     raftpb.Message. The sender writes queued messages into a buffer and
//     flushes when the queue runs empty, so messages are batched under load
//     and pipelined always; the receiver hands each to Raft in order. What
//     one Send hands over is coalesced first: appends to a peer that
//     continue one another become one, and of consecutive acknowledgements
//     only the last goes, so a busy leader sends one append per peer and
//     Ready rather than one per proposal and commit advance.
//  3. A failed dial or write closes the connection, tells Raft the peer is
//     unreachable, and dials again after a backoff that doubles from 25ms
//     up to half a second (a connection resets it).
//
// Snapshots (MsgSnap) go over a connection of their own, so heartbeats and
// appends keep flowing while one is sent: the message frame, then the
// application's snapshot data in length-prefixed chunks ending with an empty
// chunk; the receiver stores the data, hands the message to Raft and
// answers one status byte, and the sender reports the outcome to Raft.
//
// A query connection answers one frame of the cluster's member list, for a
// member joining an existing cluster.
//
// With Config.ObserveRTT set, each member probes each peer every
// Config.ProbeInterval (4s, as etcd's prober) over a probe connection of
// its own: it writes a frame holding a sequence number, the peer echoes it
// without involving Raft, and the time from write to echo is observed. An
// answer that does not come within the interval (at most 5s) is lost, the
// connection closed and dialled again for the next probe; a peer that does
// not answer is not observed. A member that predates probes answers the
// hello and closes the connection (this one refuses kinds it does not
// know, with a reason), so only the probe fails; streams never carry
// probes. Faults act on probes as on messages: a cut link loses them, a
// delayed one delays them.
//
// PeerStats counts, per peer, the frame bytes written to it and read from
// it on stream and snapshot connections (snapshot data included; hellos,
// calls and probes not), and the messages that could not be sent: dropped
// from a full queue, lost with a failed dial or write, a snapshot that
// failed. What Faults drops is the network losing it and is not a send
// failure. These are the counters behind etcd's etcd_network_peer_* metrics; the
// transport exports none itself.
//
// Faults is the fault-injection seam tests and the playground use: drop,
// delay or reorder the messages of one direction between two members, let
// a link flap (down and up in turns), partition groups, heal. It acts where the sender writes, so a partitioned link keeps its
// connection and loses what is sent over it, as a network that drops packets.
//
// Connections are plain TCP for http:// peer URLs and TLS for https:// ones:
// Config.Dial (TLSDialer) and the listener passed to Serve (TLSListener)
// are the seam. A TLS listener answers a peer that dials it in plain TCP
// with a refusal that says so, instead of a failed handshake.
package transport
