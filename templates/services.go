package templates

import (
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// Service is one entry of `services`: a host registered under a prefix.
type Service struct {
	Key     string            // the full key
	Name    string            // the key's last path segment
	Address string            // host name or IP
	Port    int               // 1-65535
	Tags    []string          // never nil
	Meta    map[string]string // never nil
}

// HostPort is Address:Port, with brackets around an IPv6 address
// ("[fd00::1]:8080"), as nginx and haproxy want it.
func (s Service) HostPort() string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) }

// parseService decodes a registration: JSON like
// {"address":"10.0.0.1","port":8080,"tags":["a"],"meta":{"k":"v"}}, or a
// plain "host:port".
func parseService(kv KV) (Service, error) {
	s := Service{Key: kv.Key, Name: path.Base(kv.Key), Tags: []string{}, Meta: map[string]string{}}
	val := strings.TrimSpace(string(kv.Value))
	if strings.HasPrefix(val, "{") {
		var j struct {
			Address string            `json:"address"`
			Port    int               `json:"port"`
			Tags    []string          `json:"tags"`
			Meta    map[string]string `json:"meta"`
		}
		if err := json.Unmarshal([]byte(val), &j); err != nil {
			return s, fmt.Errorf("key %s: decode service JSON: %w (want {\"address\":\"10.0.0.1\",\"port\":8080,\"tags\":[...],\"meta\":{...}})", kv.Key, err)
		}
		s.Address, s.Port = j.Address, j.Port
		if j.Tags != nil {
			s.Tags = j.Tags
		}
		if j.Meta != nil {
			s.Meta = j.Meta
		}
	} else {
		host, port, err := net.SplitHostPort(val)
		if err != nil {
			return s, fmt.Errorf("key %s: value %q is neither service JSON nor host:port", kv.Key, val)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return s, fmt.Errorf("key %s: port %q in %q is not a number", kv.Key, port, val)
		}
		s.Address, s.Port = host, p
	}
	if s.Address == "" {
		return s, fmt.Errorf("key %s: service has no address", kv.Key)
	}
	if s.Port == 0 {
		return s, fmt.Errorf("key %s: service has no port", kv.Key)
	}
	if s.Port < 1 || s.Port > 65535 {
		return s, fmt.Errorf("key %s: port %d out of range 1-65535", kv.Key, s.Port)
	}
	return s, nil
}
