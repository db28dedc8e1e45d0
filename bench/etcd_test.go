package bench

import "github.com/tendkv/tend/internal/etcdtest"

// startEtcd runs a real one-member etcd on loopback ports the kernel picks
// and returns its client endpoint.
func startEtcd(dir string) (endpoint string, stop func(), err error) {
	e, err := etcdtest.Start(etcdtest.Config{Dir: dir})
	if err != nil {
		return "", nil, err
	}
	return etcdtest.ClientAddr(e), e.Close, nil
}
