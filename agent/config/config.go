package config

import (
	"os"
	"syscall"
	"time"

	"github.com/tendkv/tend/agent/hook"
	"github.com/tendkv/tend/templates"
)

// Defaults for values a configuration may leave out.
const (
	DefaultEndpoint     = "http://127.0.0.1:2379"
	DefaultDialTimeout  = 5 * time.Second
	DefaultCheckTimeout = 30 * time.Second
	DefaultKillTimeout  = 10 * time.Second
	DefaultHealthTries  = 5
	DefaultHealthEvery  = time.Second
	DefaultHealthLimit  = 30 * time.Second
	DefaultServiceTTL   = 10 * time.Second
	DefaultProbeEvery   = 5 * time.Second
	DefaultProbeTimeout = 2 * time.Second
	DefaultStatusTTL    = 30 * time.Second
	// DefaultStatusKey is where a status block without a key publishes:
	// one key per host under /tend/fleet/, which tend fleet status lists.
	DefaultStatusKey = "/tend/fleet/{{ hostname }}"
)

// Config is a whole, validated agent configuration.
type Config struct {
	// Files are the HCL files it was read from, in order.
	Files     []string    `json:"files"`
	Store     Store       `json:"store"`
	Wait      Wait        `json:"wait"`
	Templates []*Template `json:"templates"`
	Hooks     []*Hook     `json:"hooks"`
	Processes []*Process  `json:"processes"`
	Services  []*Service  `json:"services,omitempty"`
	Health    *Health     `json:"health,omitempty"`
	// Status, when set, is where the agent publishes what it did; nil
	// publishes nothing.
	Status *Status `json:"status,omitempty"`
	// Telemetry, when set, is where the agent serves /metrics and /health;
	// nil serves nothing.
	Telemetry *Telemetry `json:"telemetry,omitempty"`
	Rollback  bool       `json:"rollback"`
	// Splay is the default of Template.Splay, and bounds the random delay
	// before a process whose env_prefix changed is restarted.
	Splay time.Duration `json:"splay"`
	Log   Log           `json:"log"`
	hooks map[string]*Hook
}

// Store says how to reach the keyspace.
type Store struct {
	Endpoints    []string      `json:"endpoints"`
	DialTimeout  time.Duration `json:"dial_timeout"`
	Username     string        `json:"username,omitempty"`
	Password     string        `json:"-"`
	PasswordFile string        `json:"password_file,omitempty"`
	TLS          *TLS          `json:"tls,omitempty"`
}

// TLS holds the client's certificate files; empty fields are unused.
type TLS struct {
	CAFile     string `json:"ca_file,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// Wait is the quiescence window: render once no change came for Min, but at
// least every Max while changes keep coming. Zero Min renders at once.
type Wait struct {
	Min time.Duration `json:"min"`
	Max time.Duration `json:"max"`
}

// Template is one file the agent keeps rendered.
type Template struct {
	Name string `json:"name"`
	// Pos is the file:line,col of the template block.
	Pos string `json:"pos"`
	// Source is the absolute path of the template file; empty when the text
	// is given inline as Contents.
	Source      string `json:"source,omitempty"`
	Contents    string `json:"contents,omitempty"`
	Destination string `json:"destination"`
	// Perms is the mode of the written file; zero keeps the mode of the
	// file it replaces, or 0644 for a new file.
	Perms  os.FileMode `json:"perms"`
	Owner  string      `json:"owner,omitempty"`
	Group  string      `json:"group,omitempty"`
	UID    int         `json:"-"` // -1: leave as is
	GID    int         `json:"-"` // -1: leave as is
	Backup bool        `json:"backup"`
	Check  []string    `json:"check,omitempty"`
	// CheckDir is where Check runs: the folder of the file that defines the
	// template, against which every other relative path resolves too.
	CheckDir     string        `json:"-"`
	CheckTimeout time.Duration `json:"check_timeout,omitempty"`
	OnChange     []string      `json:"on_change,omitempty"`
	// Options are what the template text is parsed with.
	Options templates.Options `json:"-"`
	// ErrorOnMissingKey mirrors Options.ErrorOnMissingKey for reading. It
	// is on unless the block sets error_on_missing_key = false: a render
	// that misses a key fails and the last good file stays.
	ErrorOnMissingKey bool `json:"error_on_missing_key"`
	Wait              Wait `json:"wait"`
	// Splay bounds a random delay before the hooks of a change that wrote
	// this file run, so that a fleet of hosts does not reload or restart at
	// once. A change set waits for the largest splay of the files it wrote.
	Splay time.Duration `json:"splay,omitempty"`
	// Parsed is the template as parsed when the configuration was loaded.
	Parsed *templates.Template `json:"-"`
}

// Parse parses text (a new version of the template's source file) with the
// template's options, naming it after its source.
func (t *Template) Parse(text string) (*templates.Template, error) {
	name := t.Source
	if name == "" {
		name = t.Name
	}
	return templates.Parse(name, text, t.Options)
}

// Hook is a named action; Run is the built hook.
type Hook struct {
	Name string    `json:"name"`
	Pos  string    `json:"pos"`
	Kind string    `json:"kind"`
	Run  hook.Hook `json:"-"`
	// Process is the supervised process a restart or signal hook acts on.
	Process string `json:"process,omitempty"`
}

// Process is a program the agent supervises.
type Process struct {
	Name      string            `json:"name"`
	Pos       string            `json:"pos"`
	Command   []string          `json:"command"`
	Dir       string            `json:"dir,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	EnvPrefix string            `json:"env_prefix,omitempty"`
	// Templates are the templates whose files the process reads: a change
	// set that writes one of them reloads the process (ReloadSignal, or a
	// restart when it is zero). Unless the block lists them, they are every
	// template of the configuration when ReloadSignal is set, and none
	// otherwise (hooks then act on the process).
	Templates      []string       `json:"templates,omitempty"`
	ReloadSignal   syscall.Signal `json:"reload_signal"`
	KillSignal     syscall.Signal `json:"kill_signal"`
	KillTimeout    time.Duration  `json:"kill_timeout"`
	RestartOnExit  bool           `json:"restart_on_exit"`
	RestartBackoff time.Duration  `json:"restart_backoff"`
}

// Health decides whether a change is accepted after its hooks ran: an HTTP
// GET answering 2xx, or a command exiting 0, within Retries tries spaced by
// Interval and before Deadline.
type Health struct {
	Pos      string        `json:"pos"`
	HTTP     string        `json:"http,omitempty"`
	Command  []string      `json:"command,omitempty"`
	Retries  int           `json:"retries"`
	Interval time.Duration `json:"interval"`
	Deadline time.Duration `json:"deadline"`
}

// Service is a registration the agent keeps in the store while the service
// is healthy: Key holds Value, attached to a lease of TTL that the agent
// keeps alive. The key goes when the check fails (the lease is revoked),
// when the agent stops cleanly (revoked too), or TTL after the agent dies.
type Service struct {
	Name string `json:"name"`
	Pos  string `json:"pos"`
	// Key and Value are the templates as written, rendered once when the
	// configuration loads (hostname, env and sprig functions; they cannot
	// read the store).
	Key   string `json:"key"`
	Value string `json:"value"`
	// TTL is the lease's, whole seconds. The client renews it every TTL/3
	// on a 500ms tick, so a TTL under a few seconds risks expiring on a
	// loaded host.
	TTL time.Duration `json:"ttl"`
	// Check, when set, gates the registration: registered only while it
	// passes.
	Check *ServiceCheck `json:"check,omitempty"`
}

// ServiceCheck is a service's health check, run every Interval, each probe
// bounded by Timeout: an HTTP GET answering one of ExpectStatus (any 2xx
// when empty), and/or a command exiting 0. With both, both must pass.
type ServiceCheck struct {
	HTTP         string        `json:"http,omitempty"`
	ExpectStatus []int         `json:"expect_status,omitempty"`
	Command      []string      `json:"command,omitempty"`
	Interval     time.Duration `json:"interval"`
	Timeout      time.Duration `json:"timeout"`
}

// Status is where the agent publishes its fleet status: Key holds a JSON
// document (the host, and per template the revision on disk and the
// outcome of the last attempt), attached to a lease of TTL the agent keeps
// alive, so that a dead agent's entry goes TTL after it died. The agent's
// user needs write permission on Key.
type Status struct {
	Pos string `json:"pos"`
	// Key is the template as written, rendered once when the
	// configuration loads (hostname, env and sprig functions), as a
	// service's key is.
	Key string `json:"key"`
	// TTL is the lease's, whole seconds.
	TTL time.Duration `json:"ttl"`
}

// Telemetry is the agent's HTTP listener for Prometheus metrics (/metrics)
// and its health (/health).
type Telemetry struct {
	Pos string `json:"pos"`
	// Listen is host:port, the host an IP address, localhost or empty
	// (every interface).
	Listen string `json:"listen"`
}

// Log configures the agent's log.
type Log struct {
	Level  string `json:"level"`
	Format string `json:"format"`
}

// Hook returns the hook named name, or nil.
func (c *Config) Hook(name string) *Hook { return c.hooks[name] }
