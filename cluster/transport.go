package cluster

import (
	raftpb "go.etcd.io/raft/v3/raftpb"
)

// Transport carries Raft messages to the other members. The peer transport
// comes with multi-member clusters; a one-member cluster has no one to send
// to, and uses noTransport.
type Transport interface {
	// Send queues messages for their destinations. It must not block on the
	// network: the Ready loop calls it.
	Send(msgs []*raftpb.Message)
	// Close stops sending and releases the connections.
	Close() error
}

// noTransport is the Transport of a one-member cluster: there is no peer to
// send to. Messages addressed to this member never reach Send.
type noTransport struct{}

func (noTransport) Send([]*raftpb.Message) {}
func (noTransport) Close() error           { return nil }
