package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Auth errors: deterministic results of applying or authorising a request.
// Their text is etcd's auth package's; cluster/v3rpc maps each to its
// rpctypes value.
var (
	ErrRootUserNotExist     = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist     = errors.New("auth: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("auth: user already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user not found")
	ErrRoleAlreadyExist     = errors.New("auth: role already exists")
	ErrRoleNotFound         = errors.New("auth: role not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrAuthFailed           = errors.New("auth: authentication failed, invalid user ID or password")
	ErrNoPasswordUser       = errors.New("auth: authentication failed, password was given for no password user")
	ErrPermissionDenied     = errors.New("auth: permission denied")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	ErrAuthNotEnabled       = errors.New("auth: authentication is not enabled")
	ErrAuthOldRevision      = errors.New("auth: revision in header is old")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")
)

var authErrors = []error{
	ErrRootUserNotExist, ErrRootRoleNotExist, ErrUserAlreadyExist, ErrUserEmpty,
	ErrUserNotFound, ErrRoleAlreadyExist, ErrRoleNotFound, ErrRoleEmpty,
	ErrPermissionNotGiven, ErrAuthFailed, ErrNoPasswordUser, ErrPermissionDenied,
	ErrRoleNotGranted, ErrPermissionNotGranted, ErrAuthNotEnabled,
	ErrAuthOldRevision, ErrInvalidAuthMgmt,
}

// RootUser and RootRole are the administrator's names: a user holding the
// root role may do everything, and auth cannot be enabled without a root user
// that holds it.
const (
	RootUser = "root"
	RootRole = "root"
)

// rootPerm is what RoleGet reports for the root role: read and write on
// every key.
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// etcd's layout of auth state in the backend.
var (
	authBucket      = []byte("auth")
	authUsersBucket = []byte("authUsers")
	authRolesBucket = []byte("authRoles")

	authEnabledKey  = []byte("authEnabled")
	authRevisionKey = []byte("authRevision")
)

// AuthInfo names who sent a request: a user, and the auth revision at which
// its credentials were checked (0: no credentials).
type AuthInfo struct {
	Username string
	Revision uint64
}

// AuthInfoOf reads the sender of a request from its header, as the store
// does when it applies the request.
func AuthInfoOf(h *pb.RequestHeader) AuthInfo {
	if h == nil {
		return AuthInfo{}
	}
	return AuthInfo{Username: h.Username, Revision: h.AuthRevision}
}

// TokenIssuer hands out the tokens of authenticated users. The store calls
// it while applying, on every member alike: Assign for each applied
// Authenticate (so a simple token is known to every member, not only to the
// one that proposed it), Forget when a user is deleted or its password
// changes, ForgetAll when authentication is disabled. Calls come with the
// store's write lock held and must not call back into the store.
type TokenIssuer interface {
	// Assign returns a token for user, who authenticated at log index while
	// the auth state was at revision rev; prefix is the random part the
	// proposer chose for simple tokens ("" for other kinds).
	Assign(user string, rev, index uint64, prefix string) (string, error)
	Forget(user string)
	ForgetAll()
}

// tokenError marks a TokenIssuer failure as the result of one request.
type tokenError struct{ err error }

func (e tokenError) Error() string { return "assign token: " + e.err.Error() }
func (e tokenError) Unwrap() error { return e.err }

// SetTokenIssuer installs the issuer later Authenticate requests get their
// tokens from (nil: tokens are empty). The API layer installs one before it
// serves.
func (s *Store) SetTokenIssuer(t TokenIssuer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = t
}

// authState is the auth part of the applied state. A value is never changed
// once published in Store.auth: a change builds the next one, so readers
// check permissions without locks against one consistent state.
type authState struct {
	enabled bool
	rev     uint64
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
	// perms are each user's merged key ranges (from its roles).
	perms map[string]*userPerms
}

// AuthView is the auth state at one moment. It is immutable and safe to use
// from any goroutine; Store.Auth returns the current one.
type AuthView struct{ st *authState }

// Auth returns the current auth state.
func (s *Store) Auth() AuthView { return AuthView{s.auth.Load()} }

// Enabled reports whether authentication is on.
func (v AuthView) Enabled() bool { return v.st.enabled }

// Revision counts the changes to users, roles and permissions (and
// disabling); it starts at 1, as etcd's.
func (v AuthView) Revision() uint64 { return v.st.rev }

// User returns a copy of a user (its bcrypt hash included).
func (v AuthView) User(name string) (*authpb.User, bool) {
	u, ok := v.st.users[name]
	if !ok {
		return nil, false
	}
	return proto.Clone(u).(*authpb.User), true
}

// HasRole reports whether user holds role.
func (v AuthView) HasRole(user, role string) bool {
	u, ok := v.st.users[user]
	return ok && slices.Contains(u.Roles, role)
}

// CheckAdmin authorises an administrative request (user and role changes,
// compaction, maintenance, membership): with auth on, only a user holding
// the root role may.
func (v AuthView) CheckAdmin(ai AuthInfo) error {
	st := v.st
	if !st.enabled {
		return nil
	}
	if ai.Username == "" {
		return ErrUserEmpty
	}
	u, ok := st.users[ai.Username]
	if !ok {
		return ErrUserNotFound
	}
	if !hasRootRole(u) {
		return ErrPermissionDenied
	}
	return nil
}

// CheckRange authorises reading key (end empty) or the range [key, end)
// (end "\x00": every key from key on).
func (v AuthView) CheckRange(ai AuthInfo, key, end []byte) error {
	return v.checkOp(ai, key, end, false)
}

// CheckPut authorises writing key.
func (v AuthView) CheckPut(ai AuthInfo, key []byte) error { return v.checkOp(ai, key, nil, true) }

// CheckDelete authorises deleting key or the range [key, end).
func (v AuthView) CheckDelete(ai AuthInfo, key, end []byte) error {
	return v.checkOp(ai, key, end, true)
}

// checkOp is etcd's isOpPermitted: credentials checked at an older auth
// revision are refused (the client authenticates again and retries), root
// may do anything, others what their roles' ranges cover.
func (v AuthView) checkOp(ai AuthInfo, key, end []byte, write bool) error {
	st := v.st
	if !st.enabled {
		return nil
	}
	if ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < st.rev {
		return ErrAuthOldRevision
	}
	u, ok := st.users[ai.Username]
	if !ok {
		return ErrPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := st.perms[ai.Username]
	if p == nil {
		return ErrPermissionDenied
	}
	rs := p.read
	if write {
		rs = p.write
	}
	if rs.cover(key, end) {
		return nil
	}
	return ErrPermissionDenied
}

// hasRootRole looks the root role up in the user's sorted roles.
func hasRootRole(u *authpb.User) bool {
	i := sort.SearchStrings(u.Roles, RootRole)
	return i < len(u.Roles) && u.Roles[i] == RootRole
}

// RootHeader is a request header that acts as root at the current auth
// revision: the member's own requests (revoking an expired lease) carry it,
// as etcd's carry a root token.
func (s *Store) RootHeader() *pb.RequestHeader {
	return &pb.RequestHeader{Username: RootUser, AuthRevision: s.Auth().Revision()}
}

// loadAuth reads the auth state from the batch transaction.
func (s *Store) loadAuth() error {
	tx := s.be.tx
	st := &authState{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	ab := tx.Bucket(authBucket)
	st.enabled = bytes.Equal(ab.Get(authEnabledKey), []byte{1})
	if v := ab.Get(authRevisionKey); len(v) == 8 {
		st.rev = binary.BigEndian.Uint64(v)
	}
	// etcd writes revision 1 when it creates its auth store; a store that
	// never had an auth change reads as that.
	st.rev = max(st.rev, 1)
	err := tx.Bucket(authUsersBucket).ForEach(func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("decode user %q: %w", k, err)
		}
		st.users[string(k)] = u
		return nil
	})
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	err = tx.Bucket(authRolesBucket).ForEach(func(k, v []byte) error {
		r := &authpb.Role{}
		if err := proto.Unmarshal(v, r); err != nil {
			return fmt.Errorf("decode role %q: %w", k, err)
		}
		st.roles[string(k)] = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("load roles: %w", err)
	}
	st.perms = mergePerms(st)
	s.auth.Store(st)
	return nil
}

// authWrite is one change of the auth state: it edits a copy and the batch
// transaction together; publish makes the copy current.
type authWrite struct {
	s  *Store
	st *authState
}

func (s *Store) beginAuth() *authWrite {
	cur := s.auth.Load()
	return &authWrite{s: s, st: &authState{
		enabled: cur.enabled,
		rev:     cur.rev,
		users:   maps.Clone(cur.users),
		roles:   maps.Clone(cur.roles),
	}}
}

func (w *authWrite) publish() {
	w.st.perms = mergePerms(w.st)
	w.s.auth.Store(w.st)
}

func (w *authWrite) put(bucket, key []byte, m proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err == nil {
		err = w.s.be.tx.Bucket(bucket).Put(key, b)
	}
	if err != nil {
		return fmt.Errorf("persist %s %q: %w", bucket, key, err)
	}
	return nil
}

func (w *authWrite) putUser(u *authpb.User) error {
	w.st.users[string(u.Name)] = u
	return w.put(authUsersBucket, u.Name, u)
}

func (w *authWrite) deleteUser(name string) error {
	delete(w.st.users, name)
	if err := w.s.be.tx.Bucket(authUsersBucket).Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	return nil
}

func (w *authWrite) putRole(r *authpb.Role) error {
	w.st.roles[string(r.Name)] = r
	return w.put(authRolesBucket, r.Name, r)
}

func (w *authWrite) deleteRole(name string) error {
	delete(w.st.roles, name)
	if err := w.s.be.tx.Bucket(authRolesBucket).Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete role %q: %w", name, err)
	}
	return nil
}

// bumpRevision counts one change, as etcd's commitRevision.
func (w *authWrite) bumpRevision() error {
	w.st.rev++
	if err := w.s.be.tx.Bucket(authBucket).Put(authRevisionKey, binary.BigEndian.AppendUint64(nil, w.st.rev)); err != nil {
		return fmt.Errorf("persist auth revision: %w", err)
	}
	return nil
}

func (w *authWrite) setEnabled(on bool) error {
	v := []byte{0}
	if on {
		v = []byte{1}
	}
	w.st.enabled = on
	if err := w.s.be.tx.Bucket(authBucket).Put(authEnabledKey, v); err != nil {
		return fmt.Errorf("persist auth enabled: %w", err)
	}
	return nil
}

// needsAdmin reports whether applying r takes the root role (with auth on),
// as etcd's auth applier decides.
func needsAdmin(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil ||
		r.AuthUserAdd != nil || r.AuthUserDelete != nil || r.AuthUserChangePassword != nil ||
		r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil ||
		r.AuthRoleAdd != nil || r.AuthRoleGrantPermission != nil || r.AuthRoleRevokePermission != nil ||
		r.AuthRoleDelete != nil || r.AuthUserList != nil || r.AuthRoleList != nil
}

// isAuthRequest reports whether r is one of the Auth service's requests.
func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return needsAdmin(r) || r.AuthStatus != nil || r.Authenticate != nil ||
		r.AuthUserGet != nil || r.AuthRoleGet != nil
}

// applyAuth applies one Auth service request; ai sent it.
func (s *Store) applyAuth(index uint64, ai AuthInfo, r *pb.InternalRaftRequest) (proto.Message, error) {
	v := s.Auth()
	hdr := func() *pb.ResponseHeader { return &pb.ResponseHeader{Revision: s.rev} }
	switch {
	case r.AuthStatus != nil:
		return &pb.AuthStatusResponse{Header: hdr(), Enabled: v.st.enabled, AuthRevision: v.st.rev}, nil
	case r.Authenticate != nil:
		tok, err := s.applyAuthenticate(index, r.Authenticate)
		if err != nil {
			return nil, err
		}
		return &pb.AuthenticateResponse{Header: hdr(), Token: tok}, nil
	case r.AuthUserGet != nil:
		if err := v.CheckAdmin(ai); err != nil && r.AuthUserGet.Name != ai.Username {
			return nil, err
		}
		u, ok := v.st.users[r.AuthUserGet.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		return &pb.AuthUserGetResponse{Header: hdr(), Roles: slices.Clone(u.Roles)}, nil
	case r.AuthRoleGet != nil:
		if err := v.CheckAdmin(ai); err != nil && !v.HasRole(ai.Username, r.AuthRoleGet.Role) {
			return nil, err
		}
		role, ok := v.st.roles[r.AuthRoleGet.Role]
		if !ok {
			return nil, ErrRoleNotFound
		}
		resp := &pb.AuthRoleGetResponse{Header: hdr()}
		if r.AuthRoleGet.Role == RootRole {
			resp.Perm = []*authpb.Permission{rootPerm()}
		} else {
			for _, p := range role.KeyPermission {
				resp.Perm = append(resp.Perm, proto.Clone(p).(*authpb.Permission))
			}
		}
		return resp, nil
	}
	if err := v.CheckAdmin(ai); err != nil {
		return nil, err
	}
	switch {
	case r.AuthUserList != nil:
		return &pb.AuthUserListResponse{Header: hdr(), Users: slices.Sorted(maps.Keys(v.st.users))}, nil
	case r.AuthRoleList != nil:
		return &pb.AuthRoleListResponse{Header: hdr(), Roles: slices.Sorted(maps.Keys(v.st.roles))}, nil
	}
	w := s.beginAuth()
	var (
		resp proto.Message
		err  error
	)
	switch {
	case r.AuthEnable != nil:
		resp, err = &pb.AuthEnableResponse{}, w.enable()
	case r.AuthDisable != nil:
		resp, err = &pb.AuthDisableResponse{}, w.disable(s.tokens)
	case r.AuthUserAdd != nil:
		resp, err = &pb.AuthUserAddResponse{}, w.userAdd(r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		resp, err = &pb.AuthUserDeleteResponse{}, w.userDelete(r.AuthUserDelete.Name, s.tokens)
	case r.AuthUserChangePassword != nil:
		resp, err = &pb.AuthUserChangePasswordResponse{}, w.userChangePassword(r.AuthUserChangePassword, s.tokens)
	case r.AuthUserGrantRole != nil:
		resp, err = &pb.AuthUserGrantRoleResponse{}, w.userGrantRole(r.AuthUserGrantRole)
	case r.AuthUserRevokeRole != nil:
		resp, err = &pb.AuthUserRevokeRoleResponse{}, w.userRevokeRole(r.AuthUserRevokeRole)
	case r.AuthRoleAdd != nil:
		resp, err = &pb.AuthRoleAddResponse{}, w.roleAdd(r.AuthRoleAdd.Name)
	case r.AuthRoleDelete != nil:
		resp, err = &pb.AuthRoleDeleteResponse{}, w.roleDelete(r.AuthRoleDelete.Role)
	case r.AuthRoleGrantPermission != nil:
		resp, err = &pb.AuthRoleGrantPermissionResponse{}, w.roleGrantPermission(r.AuthRoleGrantPermission)
	case r.AuthRoleRevokePermission != nil:
		resp, err = &pb.AuthRoleRevokePermissionResponse{}, w.roleRevokePermission(r.AuthRoleRevokePermission)
	default:
		return nil, ErrUnknownRequest
	}
	if err != nil {
		return nil, err
	}
	w.publish()
	// Every Auth response has a header.
	m := resp.ProtoReflect()
	m.Set(m.Descriptor().Fields().ByName("header"), protoreflect.ValueOfMessage(hdr().ProtoReflect()))
	return resp, nil
}

func (s *Store) applyAuthenticate(index uint64, r *pb.InternalAuthenticateRequest) (string, error) {
	st := s.auth.Load()
	if !st.enabled {
		return "", ErrAuthNotEnabled
	}
	// The password was checked before proposing; a user deleted or turned
	// password-less since then fails here, on every member alike.
	u, ok := st.users[r.Name]
	if !ok || u.GetOptions().GetNoPassword() {
		return "", ErrAuthFailed
	}
	if s.tokens == nil {
		return "", nil
	}
	tok, err := s.tokens.Assign(r.Name, st.rev, index, r.SimpleToken)
	if err != nil {
		return "", tokenError{err}
	}
	return tok, nil
}

func (w *authWrite) enable() error {
	if w.st.enabled {
		return nil
	}
	u, ok := w.st.users[RootUser]
	if !ok {
		return ErrRootUserNotExist
	}
	if !hasRootRole(u) {
		return ErrRootRoleNotExist
	}
	// Enabling keeps the revision, as etcd's does.
	return w.setEnabled(true)
}

func (w *authWrite) disable(t TokenIssuer) error {
	if !w.st.enabled {
		return nil
	}
	if err := w.setEnabled(false); err != nil {
		return err
	}
	if err := w.bumpRevision(); err != nil {
		return err
	}
	if t != nil {
		t.ForgetAll()
	}
	return nil
}

// password decodes the bcrypt hash the API layer put in the request.
func password(hashed string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return b, nil
}

func (w *authWrite) userAdd(r *pb.AuthUserAddRequest) error {
	if r.Name == "" {
		return ErrUserEmpty
	}
	if _, ok := w.st.users[r.Name]; ok {
		return ErrUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.Name), Options: proto.Clone(opts).(*authpb.UserAddOptions)}
	if !opts.NoPassword {
		pw, err := password(r.HashedPassword)
		if err != nil {
			return err
		}
		u.Password = pw
	}
	if err := w.putUser(u); err != nil {
		return err
	}
	return w.bumpRevision()
}

func (w *authWrite) userDelete(name string, t TokenIssuer) error {
	if w.st.enabled && name == RootUser {
		return ErrInvalidAuthMgmt
	}
	if _, ok := w.st.users[name]; !ok {
		return ErrUserNotFound
	}
	if err := w.deleteUser(name); err != nil {
		return err
	}
	if err := w.bumpRevision(); err != nil {
		return err
	}
	if t != nil {
		t.Forget(name)
	}
	return nil
}

func (w *authWrite) userChangePassword(r *pb.AuthUserChangePasswordRequest, t TokenIssuer) error {
	old, ok := w.st.users[r.Name]
	if !ok {
		return ErrUserNotFound
	}
	u := &authpb.User{Name: []byte(r.Name), Roles: old.Roles, Options: old.Options}
	if !old.GetOptions().GetNoPassword() {
		pw, err := password(r.HashedPassword)
		if err != nil {
			return err
		}
		u.Password = pw
	}
	if err := w.putUser(u); err != nil {
		return err
	}
	if err := w.bumpRevision(); err != nil {
		return err
	}
	if t != nil {
		t.Forget(r.Name)
	}
	return nil
}

func (w *authWrite) userGrantRole(r *pb.AuthUserGrantRoleRequest) error {
	old, ok := w.st.users[r.User]
	if !ok {
		return ErrUserNotFound
	}
	// The root role may be granted before it exists (etcdctl auth enable
	// creates it afterwards).
	if r.Role != RootRole {
		if _, ok := w.st.roles[r.Role]; !ok {
			return ErrRoleNotFound
		}
	}
	i := sort.SearchStrings(old.Roles, r.Role)
	if i < len(old.Roles) && old.Roles[i] == r.Role {
		return nil // already granted: no change, no new revision
	}
	u := proto.Clone(old).(*authpb.User)
	u.Roles = append(u.Roles, r.Role)
	sort.Strings(u.Roles)
	if err := w.putUser(u); err != nil {
		return err
	}
	return w.bumpRevision()
}

func (w *authWrite) userRevokeRole(r *pb.AuthUserRevokeRoleRequest) error {
	if w.st.enabled && r.Name == RootUser && r.Role == RootRole {
		return ErrInvalidAuthMgmt
	}
	old, ok := w.st.users[r.Name]
	if !ok {
		return ErrUserNotFound
	}
	u := &authpb.User{Name: old.Name, Password: old.Password, Options: old.Options}
	for _, role := range old.Roles {
		if role != r.Role {
			u.Roles = append(u.Roles, role)
		}
	}
	if len(u.Roles) == len(old.Roles) {
		return ErrRoleNotGranted
	}
	if err := w.putUser(u); err != nil {
		return err
	}
	return w.bumpRevision()
}

func (w *authWrite) roleAdd(name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	if _, ok := w.st.roles[name]; ok {
		return ErrRoleAlreadyExist
	}
	if err := w.putRole(&authpb.Role{Name: []byte(name)}); err != nil {
		return err
	}
	return w.bumpRevision()
}

func (w *authWrite) roleDelete(name string) error {
	if w.st.enabled && name == RootRole {
		return ErrInvalidAuthMgmt
	}
	if _, ok := w.st.roles[name]; !ok {
		return ErrRoleNotFound
	}
	if err := w.deleteRole(name); err != nil {
		return err
	}
	// Users lose the role too, in name order.
	for _, uname := range slices.Sorted(maps.Keys(w.st.users)) {
		old := w.st.users[uname]
		if !slices.Contains(old.Roles, name) {
			continue
		}
		u := &authpb.User{Name: old.Name, Password: old.Password, Options: old.Options}
		for _, role := range old.Roles {
			if role != name {
				u.Roles = append(u.Roles, role)
			}
		}
		if err := w.putUser(u); err != nil {
			return err
		}
	}
	return w.bumpRevision()
}

// permsByKey orders a role's permissions by key, as etcd keeps them.
type permsByKey []*authpb.Permission

func (p permsByKey) Len() int           { return len(p) }
func (p permsByKey) Less(i, j int) bool { return bytes.Compare(p[i].Key, p[j].Key) < 0 }
func (p permsByKey) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }

func (w *authWrite) roleGrantPermission(r *pb.AuthRoleGrantPermissionRequest) error {
	if r.Perm == nil {
		return ErrPermissionNotGiven
	}
	if !validPermRange(r.Perm.Key, r.Perm.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	old, ok := w.st.roles[r.Name]
	if !ok {
		return ErrRoleNotFound
	}
	role := proto.Clone(old).(*authpb.Role)
	perms := role.KeyPermission
	// Like etcd: only the first permission on the same key is compared, so
	// a second range on one key is added, never merged.
	i := sort.Search(len(perms), func(i int) bool { return bytes.Compare(perms[i].Key, r.Perm.Key) >= 0 })
	if i < len(perms) && bytes.Equal(perms[i].Key, r.Perm.Key) && bytes.Equal(perms[i].RangeEnd, r.Perm.RangeEnd) {
		perms[i].PermType = r.Perm.PermType
	} else {
		role.KeyPermission = append(perms, &authpb.Permission{
			Key: bytes.Clone(r.Perm.Key), RangeEnd: bytes.Clone(r.Perm.RangeEnd), PermType: r.Perm.PermType,
		})
		sort.Sort(permsByKey(role.KeyPermission))
	}
	if err := w.putRole(role); err != nil {
		return err
	}
	return w.bumpRevision()
}

func (w *authWrite) roleRevokePermission(r *pb.AuthRoleRevokePermissionRequest) error {
	old, ok := w.st.roles[r.Role]
	if !ok {
		return ErrRoleNotFound
	}
	role := &authpb.Role{Name: old.Name}
	for _, p := range old.KeyPermission {
		if !bytes.Equal(p.Key, r.Key) || !bytes.Equal(p.RangeEnd, r.RangeEnd) {
			role.KeyPermission = append(role.KeyPermission, p)
		}
	}
	if len(role.KeyPermission) == len(old.KeyPermission) {
		return ErrPermissionNotGranted
	}
	if err := w.putRole(role); err != nil {
		return err
	}
	return w.bumpRevision()
}

// authorize decides, as etcd's auth applier, whether the sender of r may
// have it applied; the checks run against the state when r is applied, so
// every member decides alike.
func (s *Store) authorize(ai AuthInfo, r *pb.InternalRaftRequest) error {
	v := s.Auth()
	if !v.st.enabled {
		return nil
	}
	switch {
	case r.Range != nil:
		return v.CheckRange(ai, r.Range.Key, r.Range.RangeEnd)
	case r.Put != nil:
		return s.checkPutAuth(v, ai, r.Put)
	case r.DeleteRange != nil:
		return s.checkDeleteAuth(v, ai, r.DeleteRange)
	case r.Txn != nil:
		return s.checkTxnAuth(v, ai, r.Txn)
	case r.LeaseRevoke != nil:
		return s.checkLeaseWrite(v, ai, r.LeaseRevoke.ID)
	}
	return nil
}

func (s *Store) checkPutAuth(v AuthView, ai AuthInfo, r *pb.PutRequest) error {
	if err := v.CheckPut(ai, r.Key); err != nil {
		return err
	}
	// Attaching a lease whose keys the user may not write would let it
	// revoke them.
	if err := s.checkLeaseWrite(v, ai, r.Lease); err != nil {
		return err
	}
	if r.PrevKv {
		return v.CheckRange(ai, r.Key, nil)
	}
	return nil
}

func (s *Store) checkDeleteAuth(v AuthView, ai AuthInfo, r *pb.DeleteRangeRequest) error {
	if err := v.CheckDelete(ai, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return v.CheckRange(ai, r.Key, r.RangeEnd)
	}
	return nil
}

// checkTxnAuth checks every compare and every request of both branches,
// nested txns included, whichever branch would run.
func (s *Store) checkTxnAuth(v AuthView, ai AuthInfo, r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if err := v.CheckRange(ai, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			var err error
			switch u := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				if u.RequestRange != nil {
					err = v.CheckRange(ai, u.RequestRange.Key, u.RequestRange.RangeEnd)
				}
			case *pb.RequestOp_RequestPut:
				if u.RequestPut != nil {
					err = s.checkPutAuth(v, ai, u.RequestPut)
				}
			case *pb.RequestOp_RequestDeleteRange:
				if d := u.RequestDeleteRange; d != nil {
					if d.PrevKv {
						err = v.CheckRange(ai, d.Key, d.RangeEnd)
					}
					if err == nil {
						err = v.CheckDelete(ai, d.Key, d.RangeEnd)
					}
				}
			case *pb.RequestOp_RequestTxn:
				if u.RequestTxn != nil {
					err = s.checkTxnAuth(v, ai, u.RequestTxn)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLeaseWrite authorises acting on lease id (revoking it, attaching a
// key to it): root may; others must be allowed to write every key the lease
// holds. An unknown lease passes (the request fails on its own).
func (s *Store) checkLeaseWrite(v AuthView, ai AuthInfo, id int64) error {
	l, ok := s.leases[id]
	if !ok {
		return nil
	}
	if v.CheckAdmin(ai) == nil {
		return nil
	}
	for _, k := range sortedLeaseKeys(l) {
		if err := v.CheckPut(ai, k); err != nil {
			return err
		}
	}
	return nil
}

func sortedLeaseKeys(l *leaseState) [][]byte {
	keys := slices.Collect(maps.Values(l.keys))
	slices.SortFunc(keys, bytes.Compare)
	return keys
}
