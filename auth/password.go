package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	"golang.org/x/crypto/bcrypt"
)

// DefaultBcryptCost is etcd's --bcrypt-cost default.
const DefaultBcryptCost = bcrypt.DefaultCost

// Passwords hashes and checks passwords at one bcrypt cost.
type Passwords struct {
	cost int
	// dummy is a hash of the same cost that unknown users are checked
	// against.
	dummy []byte
}

// defaultDummy is a bcrypt hash at DefaultBcryptCost of a random string
// nobody kept: the dummy of DefaultPasswords. (A match against it counts for
// nothing anyway: Check refuses unknown users whatever the comparison says.)
var defaultDummy = []byte("$2a$10$VztI2T86Q6rOa9xNTuPpx.sCSnbbPasEUhpI.HhcXlOdZggl.fnyq")

// DefaultPasswords hashes at DefaultBcryptCost.
func DefaultPasswords() *Passwords {
	return &Passwords{cost: DefaultBcryptCost, dummy: defaultDummy}
}

// NewPasswords checks cost (etcd's --bcrypt-cost: 4 to 31) and prepares the
// dummy hash.
func NewPasswords(cost int) (*Passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("--bcrypt-cost %d is out of range (use %d to %d; default %d)", cost, bcrypt.MinCost, bcrypt.MaxCost, DefaultBcryptCost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("tend: no such user"), cost)
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Passwords{cost: cost, dummy: dummy}, nil
}

// Hash returns the bcrypt hash of password in base64, the form etcd's
// requests carry (AuthUserAddRequest.HashedPassword).
func (p *Passwords) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), p.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// Check reports whether password is u's. u is nil for an unknown user, and
// a user without a password never matches; both take one bcrypt comparison,
// as a known user does.
func (p *Passwords) Check(u *authpb.User, password string) bool {
	hash := p.dummy
	known := u != nil && !u.GetOptions().GetNoPassword() && len(u.Password) > 0
	if known {
		hash = u.Password
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	return subtle.ConstantTimeEq(boolInt(known), 1)&subtle.ConstantTimeEq(boolInt(match), 1) == 1
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
