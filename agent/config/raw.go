package config

import "github.com/hashicorp/hcl/v2"

// The raw* types mirror the HCL blocks one to one. Optional values are
// pointers so validation can tell "absent" from "zero", and each value a
// person may get wrong carries its range for the error message.

type rawRoot struct {
	Store     *rawStore      `hcl:"store,block"`
	Wait      *rawWait       `hcl:"wait,block"`
	Templates []*rawTemplate `hcl:"template,block"`
	Hooks     []*rawHook     `hcl:"hook,block"`
	Processes []*rawProcess  `hcl:"process,block"`
	Services  []*rawService  `hcl:"service,block"`
	Health    *rawHealth     `hcl:"health,block"`
	Log       *rawLog        `hcl:"log,block"`
	Status    *rawStatus     `hcl:"status,block"`
	Telemetry *rawTelemetry  `hcl:"telemetry,block"`

	Rollback   *bool     `hcl:"rollback,optional"`
	Splay      *string   `hcl:"splay,optional"`
	SplayRange hcl.Range `hcl:"splay,attr_range"`
}

type rawStore struct {
	Endpoints         []string  `hcl:"endpoints,optional"`
	EndpointsRange    hcl.Range `hcl:"endpoints,attr_range"`
	DialTimeout       *string   `hcl:"dial_timeout,optional"`
	DialTimeoutRange  hcl.Range `hcl:"dial_timeout,attr_range"`
	Username          *string   `hcl:"username,optional"`
	Password          *string   `hcl:"password,optional"`
	PasswordFile      *string   `hcl:"password_file,optional"`
	PasswordFileRange hcl.Range `hcl:"password_file,attr_range"`
	TLS               *rawTLS   `hcl:"tls,block"`
	DefRange          hcl.Range `hcl:",def_range"`
}

type rawTLS struct {
	CAFile     *string   `hcl:"ca_file,optional"`
	CertFile   *string   `hcl:"cert_file,optional"`
	KeyFile    *string   `hcl:"key_file,optional"`
	ServerName *string   `hcl:"server_name,optional"`
	DefRange   hcl.Range `hcl:",def_range"`
}

type rawWait struct {
	Min      *string   `hcl:"min,optional"`
	MinRange hcl.Range `hcl:"min,attr_range"`
	Max      *string   `hcl:"max,optional"`
	MaxRange hcl.Range `hcl:"max,attr_range"`
	DefRange hcl.Range `hcl:",def_range"`
}

type rawTemplate struct {
	Name              string    `hcl:"name,label"`
	Source            *string   `hcl:"source,optional"`
	SourceRange       hcl.Range `hcl:"source,attr_range"`
	Contents          *string   `hcl:"contents,optional"`
	ContentsRange     hcl.Range `hcl:"contents,attr_range"`
	Destination       string    `hcl:"destination"`
	DestinationRange  hcl.Range `hcl:"destination,attr_range"`
	Perms             *string   `hcl:"perms,optional"`
	PermsRange        hcl.Range `hcl:"perms,attr_range"`
	Owner             *string   `hcl:"owner,optional"`
	OwnerRange        hcl.Range `hcl:"owner,attr_range"`
	Group             *string   `hcl:"group,optional"`
	GroupRange        hcl.Range `hcl:"group,attr_range"`
	Backup            *bool     `hcl:"backup,optional"`
	Check             []string  `hcl:"check,optional"`
	CheckRange        hcl.Range `hcl:"check,attr_range"`
	CheckTimeout      *string   `hcl:"check_timeout,optional"`
	CheckTimeoutRange hcl.Range `hcl:"check_timeout,attr_range"`
	OnChange          []string  `hcl:"on_change,optional"`
	OnChangeRange     hcl.Range `hcl:"on_change,attr_range"`
	ErrorOnMissingKey *bool     `hcl:"error_on_missing_key,optional"`
	Delims            []string  `hcl:"delims,optional"`
	DelimsRange       hcl.Range `hcl:"delims,attr_range"`
	Splay             *string   `hcl:"splay,optional"`
	SplayRange        hcl.Range `hcl:"splay,attr_range"`
	Wait              *rawWait  `hcl:"wait,block"`
	DefRange          hcl.Range `hcl:",def_range"`
}

type rawHook struct {
	Name     string      `hcl:"name,label"`
	Exec     *rawExec    `hcl:"exec,block"`
	Signal   *rawSignal  `hcl:"signal,block"`
	Restart  *rawRestart `hcl:"restart,block"`
	HTTP     *rawHTTP    `hcl:"http,block"`
	DefRange hcl.Range   `hcl:",def_range"`
}

type rawExec struct {
	Command      []string          `hcl:"command"`
	Timeout      *string           `hcl:"timeout,optional"`
	TimeoutRange hcl.Range         `hcl:"timeout,attr_range"`
	Env          map[string]string `hcl:"env,optional"`
	Dir          *string           `hcl:"dir,optional"`
	DefRange     hcl.Range         `hcl:",def_range"`
}

type rawSignal struct {
	Pidfile      *string   `hcl:"pidfile,optional"`
	Process      *string   `hcl:"process,optional"`
	ProcessRange hcl.Range `hcl:"process,attr_range"`
	Signal       string    `hcl:"signal"`
	SignalRange  hcl.Range `hcl:"signal,attr_range"`
	DefRange     hcl.Range `hcl:",def_range"`
}

type rawRestart struct {
	Process      string    `hcl:"process"`
	ProcessRange hcl.Range `hcl:"process,attr_range"`
	DefRange     hcl.Range `hcl:",def_range"`
}

type rawHTTP struct {
	Method         *string           `hcl:"method,optional"`
	URL            string            `hcl:"url"`
	Headers        map[string]string `hcl:"headers,optional"`
	Body           *string           `hcl:"body,optional"`
	ExpectStatus   []int             `hcl:"expect_status,optional"`
	Timeout        *string           `hcl:"timeout,optional"`
	TimeoutRange   hcl.Range         `hcl:"timeout,attr_range"`
	Retries        *int              `hcl:"retries,optional"`
	RetryWait      *string           `hcl:"retry_wait,optional"`
	RetryWaitRange hcl.Range         `hcl:"retry_wait,attr_range"`
	DefRange       hcl.Range         `hcl:",def_range"`
}

type rawProcess struct {
	Name                string            `hcl:"name,label"`
	Command             []string          `hcl:"command"`
	CommandRange        hcl.Range         `hcl:"command,attr_range"`
	Dir                 *string           `hcl:"dir,optional"`
	Env                 map[string]string `hcl:"env,optional"`
	EnvPrefix           *string           `hcl:"env_prefix,optional"`
	Templates           *[]string         `hcl:"templates,optional"`
	TemplatesRange      hcl.Range         `hcl:"templates,attr_range"`
	ReloadSignal        *string           `hcl:"reload_signal,optional"`
	ReloadSignalRange   hcl.Range         `hcl:"reload_signal,attr_range"`
	KillSignal          *string           `hcl:"kill_signal,optional"`
	KillSignalRange     hcl.Range         `hcl:"kill_signal,attr_range"`
	KillTimeout         *string           `hcl:"kill_timeout,optional"`
	KillTimeoutRange    hcl.Range         `hcl:"kill_timeout,attr_range"`
	RestartOnExit       *bool             `hcl:"restart_on_exit,optional"`
	RestartBackoff      *string           `hcl:"restart_backoff,optional"`
	RestartBackoffRange hcl.Range         `hcl:"restart_backoff,attr_range"`
	DefRange            hcl.Range         `hcl:",def_range"`
}

type rawHealth struct {
	HTTP          *string   `hcl:"http,optional"`
	Command       []string  `hcl:"command,optional"`
	Retries       *int      `hcl:"retries,optional"`
	RetriesRange  hcl.Range `hcl:"retries,attr_range"`
	Interval      *string   `hcl:"interval,optional"`
	IntervalRange hcl.Range `hcl:"interval,attr_range"`
	Deadline      *string   `hcl:"deadline,optional"`
	DeadlineRange hcl.Range `hcl:"deadline,attr_range"`
	DefRange      hcl.Range `hcl:",def_range"`
}

type rawLog struct {
	Level       *string   `hcl:"level,optional"`
	LevelRange  hcl.Range `hcl:"level,attr_range"`
	Format      *string   `hcl:"format,optional"`
	FormatRange hcl.Range `hcl:"format,attr_range"`
}

type rawService struct {
	Name       string           `hcl:"name,label"`
	Key        *string          `hcl:"key,optional"`
	KeyRange   hcl.Range        `hcl:"key,attr_range"`
	Value      *string          `hcl:"value,optional"`
	ValueRange hcl.Range        `hcl:"value,attr_range"`
	TTL        *string          `hcl:"ttl,optional"`
	TTLRange   hcl.Range        `hcl:"ttl,attr_range"`
	Check      *rawServiceCheck `hcl:"check,block"`
	DefRange   hcl.Range        `hcl:",def_range"`
}

type rawServiceCheck struct {
	HTTP              *string   `hcl:"http,optional"`
	HTTPRange         hcl.Range `hcl:"http,attr_range"`
	ExpectStatus      []int     `hcl:"expect_status,optional"`
	ExpectStatusRange hcl.Range `hcl:"expect_status,attr_range"`
	Command           []string  `hcl:"command,optional"`
	CommandRange      hcl.Range `hcl:"command,attr_range"`
	Interval          *string   `hcl:"interval,optional"`
	IntervalRange     hcl.Range `hcl:"interval,attr_range"`
	Timeout           *string   `hcl:"timeout,optional"`
	TimeoutRange      hcl.Range `hcl:"timeout,attr_range"`
	DefRange          hcl.Range `hcl:",def_range"`
}

type rawStatus struct {
	Key      *string   `hcl:"key,optional"`
	KeyRange hcl.Range `hcl:"key,attr_range"`
	TTL      *string   `hcl:"ttl,optional"`
	TTLRange hcl.Range `hcl:"ttl,attr_range"`
	DefRange hcl.Range `hcl:",def_range"`
}

type rawTelemetry struct {
	Listen      *string   `hcl:"listen,optional"`
	ListenRange hcl.Range `hcl:"listen,attr_range"`
	DefRange    hcl.Range `hcl:",def_range"`
}
