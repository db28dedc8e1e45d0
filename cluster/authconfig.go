package cluster

import (
	"fmt"

	"github.com/tendkv/tend/auth"
)

// authSetup builds what the member needs for authentication from etcd's
// flags: --auth-token (default "simple"), --auth-token-ttl (default 300s)
// and --bcrypt-cost (default 10).
func authSetup(cfg Config) (auth.Tokens, *auth.Passwords, error) {
	spec := cfg.AuthToken
	if spec == "" {
		spec = "simple"
	}
	if cfg.AuthTokenTTL < 0 {
		return nil, nil, fmt.Errorf("--auth-token-ttl %v: must not be negative", cfg.AuthTokenTTL)
	}
	tokens, err := auth.NewTokens(spec, auth.Options{TTL: cfg.AuthTokenTTL})
	if err != nil {
		return nil, nil, err
	}
	if cfg.BcryptCost == 0 || cfg.BcryptCost == auth.DefaultBcryptCost {
		return tokens, auth.DefaultPasswords(), nil
	}
	passwords, err := auth.NewPasswords(cfg.BcryptCost)
	if err != nil {
		return nil, nil, err
	}
	return tokens, passwords, nil
}
