package store

import (
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

type alarmKey struct {
	member uint64
	alarm  pb.AlarmType
}

func (s *Store) loadAlarms() error {
	s.alarms = make(map[alarmKey]*pb.AlarmMember)
	err := s.be.tx.Bucket(alarmBucket).ForEach(func(k, _ []byte) error {
		m := &pb.AlarmMember{}
		if err := proto.Unmarshal(k, m); err != nil {
			return fmt.Errorf("decode alarm %x: %w", k, err)
		}
		s.alarms[alarmKey{m.MemberID, m.Alarm}] = m
		return nil
	})
	if err != nil {
		return fmt.Errorf("load alarms: %w", err)
	}
	return nil
}

func alarmBytes(m *pb.AlarmMember) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// applyAlarm activates, deactivates or lists alarms as etcd's alarm store
// does; lists come in (member, alarm) order.
func (s *Store) applyAlarm(r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
	k := alarmKey{r.MemberID, r.Alarm}
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = s.alarmList(r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			break
		}
		if m, ok := s.alarms[k]; ok {
			resp.Alarms = append(resp.Alarms, proto.Clone(m).(*pb.AlarmMember))
			break
		}
		m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		b, err := alarmBytes(m)
		if err == nil {
			err = s.be.tx.Bucket(alarmBucket).Put(b, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("persist alarm %v: %w", m, err)
		}
		s.alarms[k] = m
		resp.Alarms = append(resp.Alarms, proto.Clone(m).(*pb.AlarmMember))
	case pb.AlarmRequest_DEACTIVATE:
		m, ok := s.alarms[k]
		if !ok {
			break
		}
		b, err := alarmBytes(m)
		if err == nil {
			err = s.be.tx.Bucket(alarmBucket).Delete(b)
		}
		if err != nil {
			return nil, fmt.Errorf("delete alarm %v: %w", m, err)
		}
		delete(s.alarms, k)
		resp.Alarms = append(resp.Alarms, proto.Clone(m).(*pb.AlarmMember))
	default:
		return nil, ErrUnknownRequest
	}
	return resp, nil
}

func (s *Store) alarmList(at pb.AlarmType) []*pb.AlarmMember {
	var out []*pb.AlarmMember
	for k, m := range s.alarms {
		if at == pb.AlarmType_NONE || k.alarm == at {
			out = append(out, proto.Clone(m).(*pb.AlarmMember))
		}
	}
	slices.SortFunc(out, func(a, b *pb.AlarmMember) int {
		if a.MemberID != b.MemberID {
			if a.MemberID < b.MemberID {
				return -1
			}
			return 1
		}
		return int(a.Alarm) - int(b.Alarm)
	})
	return out
}

// Alarms lists the raised alarms.
func (s *Store) Alarms() []*pb.AlarmMember {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.alarmList(pb.AlarmType_NONE)
}
