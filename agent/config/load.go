package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/tendkv/tend/agent/hook"
	"github.com/tendkv/tend/templates"
)

// Load reads the configuration at path: one HCL file, or a folder whose
// *.hcl files are merged (a block or setting that may appear once must then
// appear in one file only). Relative paths inside a file are relative to
// that file's folder. The error lists every problem found, one per line,
// each starting with file:line,col.
func Load(path string) (*Config, error) {
	files, err := configFiles(path)
	if err != nil {
		return nil, err
	}
	parser := hclparse.NewParser()
	var bodies []*hcl.File
	var diags hcl.Diagnostics
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", f, err)
		}
		file, d := parser.ParseHCL(src, f)
		diags = append(diags, d...)
		if file != nil {
			bodies = append(bodies, file)
		}
	}
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var raw rawRoot
	if d := gohcl.DecodeBody(hcl.MergeFiles(bodies), nil, &raw); d.HasErrors() {
		return nil, diagError(d)
	}
	v := &validator{declared: map[string]bool{}}
	cfg := v.config(&raw)
	cfg.Files = files
	if err := v.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configFiles lists the files path stands for.
func configFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w (pass --config with an .hcl file or a folder of them)", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.hcl"))
	if err != nil {
		return nil, fmt.Errorf("list config folder %s: %w", path, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("config folder %s holds no *.hcl file (add one, e.g. agent.hcl)", path)
	}
	sort.Strings(files)
	return files, nil
}

// diagError turns HCL diagnostics into one error, a line per diagnostic.
func diagError(diags hcl.Diagnostics) error {
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject != nil {
			msg = pos(*d.Subject) + ": " + msg
		}
		lines = append(lines, msg)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// pos formats the start of r as file:line,col.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// validator collects every problem rather than stopping at the first.
type validator struct {
	errs []problem
	// declared holds every hook name written, valid or not, so a broken
	// hook is reported once, not again by each template naming it.
	declared map[string]bool
}

// problem is one error at a place.
type problem struct {
	at  hcl.Range
	msg string
}

func (v *validator) errorf(r hcl.Range, format string, args ...any) {
	v.errs = append(v.errs, problem{at: r, msg: pos(r) + ": " + fmt.Sprintf(format, args...)})
}

// err returns the problems in file and line order as one error, or nil.
func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	sort.SliceStable(v.errs, func(i, j int) bool {
		a, b := v.errs[i].at, v.errs[j].at
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	lines := make([]string, len(v.errs))
	for i, p := range v.errs {
		lines[i] = p.msg
	}
	return errors.New(strings.Join(lines, "\n"))
}

// duration parses an optional duration attribute; def when absent.
func (v *validator) duration(s *string, r hcl.Range, what string, def time.Duration) time.Duration {
	if s == nil {
		return def
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		v.errorf(r, "%s %q is not a duration (write it like \"500ms\", \"2s\" or \"1m\")", what, *s)
		return def
	}
	if d < 0 {
		v.errorf(r, "%s %q is negative (use zero or more)", what, *s)
		return def
	}
	return d
}

// relative resolves p against the folder of the file r is in.
func relative(r hcl.Range, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join(filepath.Dir(r.Filename), p))
	if err != nil {
		return filepath.Join(filepath.Dir(r.Filename), p)
	}
	return abs
}

func (v *validator) config(raw *rawRoot) *Config {
	cfg := &Config{Rollback: true, Log: Log{Level: "info", Format: "text"}, hooks: map[string]*Hook{}}
	cfg.Store = v.store(raw.Store)
	if raw.Wait != nil {
		cfg.Wait = v.wait(raw.Wait)
	}
	if raw.Rollback != nil {
		cfg.Rollback = *raw.Rollback
	}
	cfg.Splay = v.duration(raw.Splay, raw.SplayRange, "splay", 0)
	if raw.Log != nil {
		cfg.Log = v.log(raw.Log)
	}

	processes := map[string]bool{}
	rawProcs := map[*Process]*rawProcess{}
	for _, rp := range raw.Processes {
		if processes[rp.Name] {
			v.errorf(rp.DefRange, "process %q is defined twice (give each process block its own name)", rp.Name)
			continue
		}
		processes[rp.Name] = true
		p := v.process(rp)
		rawProcs[p] = rp
		cfg.Processes = append(cfg.Processes, p)
	}
	for _, rh := range raw.Hooks {
		v.declared[rh.Name] = true
		if cfg.hooks[rh.Name] != nil {
			v.errorf(rh.DefRange, "hook %q is defined twice (give each hook block its own name)", rh.Name)
			continue
		}
		h := v.hook(rh, processes)
		if h == nil {
			continue
		}
		cfg.hooks[h.Name] = h
		cfg.Hooks = append(cfg.Hooks, h)
	}
	names := map[string]bool{}
	dests := map[string]string{}
	for _, rt := range raw.Templates {
		if names[rt.Name] {
			v.errorf(rt.DefRange, "template %q is defined twice (give each template block its own name)", rt.Name)
			continue
		}
		names[rt.Name] = true
		t := v.template(rt, cfg)
		if t == nil {
			continue
		}
		if other, ok := dests[t.Destination]; ok && t.Destination != "" {
			v.errorf(rt.DestinationRange, "template %q: destination %s is also written by template %q (give each template its own destination)", t.Name, t.Destination, other)
			continue
		}
		dests[t.Destination] = t.Name
		cfg.Templates = append(cfg.Templates, t)
	}
	for _, p := range cfg.Processes {
		v.processTemplates(p, rawProcs[p], cfg, names)
	}
	services := map[string]bool{}
	keys := map[string]string{}
	for _, rs := range raw.Services {
		if services[rs.Name] {
			v.errorf(rs.DefRange, "service %q is defined twice (give each service block its own name)", rs.Name)
			continue
		}
		services[rs.Name] = true
		s := v.service(rs)
		if s == nil {
			continue
		}
		if other, ok := keys[s.Key]; ok {
			v.errorf(rs.KeyRange, "service %q: key %s is also registered by service %q (give each service its own key)", s.Name, s.Key, other)
			continue
		}
		keys[s.Key] = s.Name
		cfg.Services = append(cfg.Services, s)
	}
	if raw.Health != nil {
		cfg.Health = v.health(raw.Health)
	}
	if raw.Status != nil {
		cfg.Status = v.status(raw.Status)
		if s := cfg.Status; s != nil && keys[s.Key] != "" {
			at := raw.Status.DefRange
			if raw.Status.Key != nil {
				at = raw.Status.KeyRange
			}
			v.errorf(at, "status: key %s is also registered by service %q (give the status its own key, e.g. %q)", s.Key, keys[s.Key], DefaultStatusKey)
			cfg.Status = nil
		}
	}
	if raw.Telemetry != nil {
		cfg.Telemetry = v.telemetry(raw.Telemetry)
	}
	if len(raw.Templates) == 0 && len(raw.Processes) == 0 && len(raw.Services) == 0 {
		v.errs = append(v.errs, problem{msg: "config defines no template, process or service (add a template \"name\" { source = ..., destination = ... } block)"})
	}
	return cfg
}

func (v *validator) store(rs *rawStore) Store {
	s := Store{Endpoints: []string{DefaultEndpoint}, DialTimeout: DefaultDialTimeout}
	if rs == nil {
		return s
	}
	if rs.Endpoints != nil {
		if len(rs.Endpoints) == 0 {
			v.errorf(rs.EndpointsRange, "store endpoints is empty (list at least one, e.g. [%q])", DefaultEndpoint)
		}
		for _, e := range rs.Endpoints {
			if !validEndpoint(e) {
				v.errorf(rs.EndpointsRange, "store endpoint %q is not an http(s) URL or host:port (write it like %q)", e, DefaultEndpoint)
			}
		}
		s.Endpoints = rs.Endpoints
	}
	s.DialTimeout = v.duration(rs.DialTimeout, rs.DialTimeoutRange, "store dial_timeout", DefaultDialTimeout)
	if rs.Username != nil {
		s.Username = *rs.Username
	}
	if rs.Password != nil && rs.PasswordFile != nil {
		v.errorf(rs.PasswordFileRange, "store has both password and password_file (keep one)")
	}
	if rs.Password != nil {
		s.Password = *rs.Password
	}
	if rs.PasswordFile != nil {
		s.PasswordFile = relative(rs.PasswordFileRange, *rs.PasswordFile)
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			v.errorf(rs.PasswordFileRange, "store password_file: %v (create it or fix the path)", err)
		}
		s.Password = strings.TrimRight(string(b), "\r\n")
	}
	if (s.Username == "") != (s.Password == "") && rs.PasswordFile == nil {
		v.errorf(rs.DefRange, "store needs both username and password (or password_file), or neither")
	}
	if rs.TLS != nil {
		t := &TLS{}
		for _, f := range []struct {
			in  *string
			out *string
			key string
		}{{rs.TLS.CAFile, &t.CAFile, "ca_file"}, {rs.TLS.CertFile, &t.CertFile, "cert_file"}, {rs.TLS.KeyFile, &t.KeyFile, "key_file"}} {
			if f.in == nil {
				continue
			}
			*f.out = relative(rs.TLS.DefRange, *f.in)
			if _, err := os.Stat(*f.out); err != nil {
				v.errorf(rs.TLS.DefRange, "store tls %s: %v (fix the path)", f.key, err)
			}
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.errorf(rs.TLS.DefRange, "store tls needs both cert_file and key_file, or neither")
		}
		if rs.TLS.ServerName != nil {
			t.ServerName = *rs.TLS.ServerName
		}
		s.TLS = t
	}
	return s
}

func (v *validator) wait(rw *rawWait) Wait {
	w := Wait{
		Min: v.duration(rw.Min, rw.MinRange, "wait min", 0),
		Max: v.duration(rw.Max, rw.MaxRange, "wait max", 0),
	}
	if rw.Max == nil {
		w.Max = 4 * w.Min
	}
	if w.Max < w.Min {
		v.errorf(rw.MaxRange, "wait max %s is below min %s (make max at least min)", w.Max, w.Min)
	}
	return w
}

func (v *validator) log(rl *rawLog) Log {
	l := Log{Level: "info", Format: "text"}
	if rl.Level != nil {
		switch *rl.Level {
		case "debug", "info", "warn", "error":
			l.Level = *rl.Level
		default:
			v.errorf(rl.LevelRange, "log level %q is unknown (use debug, info, warn or error)", *rl.Level)
		}
	}
	if rl.Format != nil {
		switch *rl.Format {
		case "text", "json":
			l.Format = *rl.Format
		default:
			v.errorf(rl.FormatRange, "log format %q is unknown (use text or json)", *rl.Format)
		}
	}
	return l
}

func (v *validator) process(rp *rawProcess) *Process {
	p := &Process{
		Name:          rp.Name,
		Pos:           pos(rp.DefRange),
		Command:       rp.Command,
		Env:           rp.Env,
		ReloadSignal:  0,
		KillTimeout:   v.duration(rp.KillTimeout, rp.KillTimeoutRange, "process "+strconv.Quote(rp.Name)+" kill_timeout", DefaultKillTimeout),
		RestartOnExit: rp.RestartOnExit != nil && *rp.RestartOnExit,
	}
	p.RestartBackoff = v.duration(rp.RestartBackoff, rp.RestartBackoffRange, "process "+strconv.Quote(rp.Name)+" restart_backoff", time.Second)
	if len(rp.Command) == 0 || rp.Command[0] == "" {
		v.errorf(rp.CommandRange, "process %q has no command (set command = [\"/usr/bin/myapp\", \"--flag\"])", rp.Name)
	}
	if rp.Dir != nil {
		p.Dir = relative(rp.DefRange, *rp.Dir)
	}
	if rp.EnvPrefix != nil {
		p.EnvPrefix = *rp.EnvPrefix
		if p.EnvPrefix == "" {
			v.errorf(rp.DefRange, "process %q: env_prefix is empty (name a key prefix like \"/myapp/production/env/\")", rp.Name)
		}
	}
	if rp.ReloadSignal != nil {
		p.ReloadSignal = v.signal(rp.ReloadSignal, rp.ReloadSignalRange, "", "process "+strconv.Quote(rp.Name)+" reload_signal")
	}
	p.KillSignal = v.signal(rp.KillSignal, rp.KillSignalRange, "SIGTERM", "process "+strconv.Quote(rp.Name)+" kill_signal")
	return p
}

// processTemplates settles which templates' files process p reads: those
// its block lists, which must be defined; else, when it has a reload
// signal, every template (a process that asks to be signalled on change
// reads the rendered files, as consul-template's exec mode assumes); else
// none, so that a process whose hooks reload it, or which re-reads its
// files by itself, is not restarted behind their back.
func (v *validator) processTemplates(p *Process, rp *rawProcess, cfg *Config, names map[string]bool) {
	if rp.Templates == nil {
		if p.ReloadSignal != 0 {
			for _, t := range cfg.Templates {
				p.Templates = append(p.Templates, t.Name)
			}
		}
		return
	}
	for _, name := range *rp.Templates {
		if !names[name] {
			v.errorf(rp.TemplatesRange, "process %q: templates names template %q, which is not defined (add a template %q block, or use one of: %s)", p.Name, name, name, list(names))
			continue
		}
		p.Templates = append(p.Templates, name)
	}
}

func (v *validator) signal(s *string, r hcl.Range, def, what string) (sig syscall.Signal) {
	name := def
	if s != nil {
		name = *s
	}
	sig, err := hook.ParseSignal(name)
	if err != nil {
		v.errorf(r, "%s: %v", what, err)
	}
	return sig
}

func (v *validator) hook(rh *rawHook, processes map[string]bool) *Hook {
	h := &Hook{Name: rh.Name, Pos: pos(rh.DefRange)}
	kinds := 0
	for _, set := range []bool{rh.Exec != nil, rh.Signal != nil, rh.Restart != nil, rh.HTTP != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		v.errorf(rh.DefRange, "hook %q needs exactly one of exec, signal, restart or http blocks, has %d (keep one; list several hooks in on_change to run several actions)", rh.Name, kinds)
		return nil
	}
	var err error
	var at hcl.Range
	switch {
	case rh.Exec != nil:
		e := rh.Exec
		h.Kind, at = "exec", e.DefRange
		timeout := v.duration(e.Timeout, e.TimeoutRange, "hook "+strconv.Quote(rh.Name)+" exec timeout", 0)
		dir := ""
		if e.Dir != nil {
			dir = relative(e.DefRange, *e.Dir)
		}
		h.Run, err = hook.NewExec(rh.Name, e.Command, timeout, e.Env, dir)
	case rh.Signal != nil:
		s := rh.Signal
		h.Kind, at = "signal", s.DefRange
		t := hook.SignalTarget{Signal: s.Signal}
		if s.Pidfile != nil {
			t.Pidfile = relative(s.DefRange, *s.Pidfile)
		}
		if s.Process != nil {
			t.Process = *s.Process
			h.Process = t.Process
			if !processes[t.Process] {
				v.errorf(s.ProcessRange, "hook %q: process %q is not defined (add a process %q block, or use one of: %s)", rh.Name, t.Process, t.Process, list(processes))
				return nil
			}
		}
		if _, perr := hook.ParseSignal(s.Signal); perr != nil {
			at = s.SignalRange
		}
		h.Run, err = hook.NewSignal(rh.Name, t)
	case rh.Restart != nil:
		r := rh.Restart
		h.Kind, at, h.Process = "restart", r.DefRange, r.Process
		if !processes[r.Process] {
			v.errorf(r.ProcessRange, "hook %q: process %q is not defined (add a process %q block, or use one of: %s)", rh.Name, r.Process, r.Process, list(processes))
			return nil
		}
		h.Run, err = hook.NewRestart(rh.Name, r.Process)
	case rh.HTTP != nil:
		x := rh.HTTP
		h.Kind, at = "http", x.DefRange
		req := hook.HTTPRequest{
			URL:          x.URL,
			Headers:      x.Headers,
			ExpectStatus: x.ExpectStatus,
			Timeout:      v.duration(x.Timeout, x.TimeoutRange, "hook "+strconv.Quote(rh.Name)+" http timeout", 0),
			RetryWait:    v.duration(x.RetryWait, x.RetryWaitRange, "hook "+strconv.Quote(rh.Name)+" http retry_wait", 0),
		}
		if x.Method != nil {
			req.Method = *x.Method
		}
		if x.Body != nil {
			req.Body = *x.Body
		}
		if x.Retries != nil {
			req.Retries = *x.Retries
		}
		h.Run, err = hook.NewHTTP(rh.Name, req)
	}
	if err != nil {
		v.errorf(at, "%v", err)
		return nil
	}
	return h
}

// list names the keys of set in order, or says there are none.
func list(set map[string]bool) string {
	if len(set) == 0 {
		return "none is defined"
	}
	var names []string
	for n := range set {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (v *validator) template(rt *rawTemplate, cfg *Config) *Template {
	t := &Template{
		Name:         rt.Name,
		Pos:          pos(rt.DefRange),
		Destination:  relative(rt.DestinationRange, rt.Destination),
		UID:          -1,
		GID:          -1,
		Backup:       rt.Backup != nil && *rt.Backup,
		Check:        rt.Check,
		CheckDir:     relative(rt.DefRange, "."),
		CheckTimeout: v.duration(rt.CheckTimeout, rt.CheckTimeoutRange, "template "+strconv.Quote(rt.Name)+" check_timeout", DefaultCheckTimeout),
		OnChange:     rt.OnChange,
		Wait:         cfg.Wait,
	}
	ok := true
	bad := func(r hcl.Range, format string, args ...any) {
		v.errorf(r, "template %q: "+format, append([]any{rt.Name}, args...)...)
		ok = false
	}
	if rt.Destination == "" {
		bad(rt.DestinationRange, "destination is empty (set the path of the file to write)")
	} else if info, err := os.Stat(filepath.Dir(t.Destination)); err != nil || !info.IsDir() {
		bad(rt.DestinationRange, "destination folder %s does not exist (create it first)", filepath.Dir(t.Destination))
	}
	if rt.Perms != nil {
		m, err := strconv.ParseUint(*rt.Perms, 8, 32)
		if err != nil || m > 0o7777 || m == 0 {
			bad(rt.PermsRange, "perms %q is not an octal file mode (write it like \"0640\")", *rt.Perms)
		} else {
			t.Perms = os.FileMode(m)
		}
	}
	if rt.Owner != nil {
		t.Owner = *rt.Owner
		u, err := user.Lookup(t.Owner)
		if err != nil {
			u, err = user.LookupId(t.Owner)
		}
		if err != nil {
			bad(rt.OwnerRange, "owner %q is not a user on this host (use an existing user name or uid)", t.Owner)
		} else {
			t.UID, _ = strconv.Atoi(u.Uid)
		}
	}
	if rt.Group != nil {
		t.Group = *rt.Group
		g, err := user.LookupGroup(t.Group)
		if err != nil {
			g, err = user.LookupGroupId(t.Group)
		}
		if err != nil {
			bad(rt.GroupRange, "group %q is not a group on this host (use an existing group name or gid)", t.Group)
		} else {
			t.GID, _ = strconv.Atoi(g.Gid)
		}
	}
	for _, arg := range rt.Check {
		if _, err := template.New("check").Option("missingkey=error").Parse(arg); err != nil {
			bad(rt.CheckRange, "check argument %q: %v (only {{ .path }} is known)", arg, err)
		}
	}
	for _, name := range rt.OnChange {
		if cfg.hooks[name] == nil && !v.declared[name] {
			known := map[string]bool{}
			for n := range cfg.hooks {
				known[n] = true
			}
			bad(rt.OnChangeRange, "on_change names hook %q, which is not defined (add a hook %q block, or use one of: %s)", name, name, list(known))
		}
	}
	if rt.Wait != nil {
		t.Wait = v.wait(rt.Wait)
	}
	t.Splay = v.duration(rt.Splay, rt.SplayRange, "template "+strconv.Quote(rt.Name)+" splay", cfg.Splay)
	// A missing key fails the render unless the block says otherwise, so
	// the last good file stays rather than one with a blank where a value
	// belongs; keyOrDefault and exists read keys that may be missing.
	t.Options.ErrorOnMissingKey = rt.ErrorOnMissingKey == nil || *rt.ErrorOnMissingKey
	t.ErrorOnMissingKey = t.Options.ErrorOnMissingKey
	if rt.Delims != nil {
		if len(rt.Delims) != 2 || rt.Delims[0] == "" || rt.Delims[1] == "" {
			bad(rt.DelimsRange, "delims must be two non-empty strings (write it like [\"[[\", \"]]\"])")
		} else {
			t.Options.Delims = [2]string{rt.Delims[0], rt.Delims[1]}
		}
	}

	var text string
	var textRange hcl.Range
	switch {
	case rt.Source != nil && rt.Contents != nil:
		bad(rt.ContentsRange, "has both source and contents (keep one)")
		return nil
	case rt.Source != nil:
		t.Source = relative(rt.SourceRange, *rt.Source)
		textRange = rt.SourceRange
		b, err := os.ReadFile(t.Source)
		if err != nil {
			bad(rt.SourceRange, "read source: %v (create the file or fix the path)", err)
			return nil
		}
		text = string(b)
	case rt.Contents != nil:
		t.Contents = *rt.Contents
		text, textRange = t.Contents, rt.ContentsRange
	default:
		bad(rt.DefRange, "has neither source nor contents (set source = \"app.conf.tmpl\" or contents = \"...\")")
		return nil
	}
	parsed, err := t.Parse(text)
	if err != nil {
		bad(textRange, "%v", err)
		return nil
	}
	t.Parsed = parsed
	if !ok {
		return nil
	}
	return t
}

func (v *validator) health(rh *rawHealth) *Health {
	h := &Health{
		Pos:      pos(rh.DefRange),
		Command:  rh.Command,
		Retries:  DefaultHealthTries,
		Interval: v.duration(rh.Interval, rh.IntervalRange, "health interval", DefaultHealthEvery),
		Deadline: v.duration(rh.Deadline, rh.DeadlineRange, "health deadline", DefaultHealthLimit),
	}
	if rh.HTTP != nil {
		h.HTTP = *rh.HTTP
		u, err := url.Parse(h.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(rh.DefRange, "health http %q is not an http(s) URL (write it like \"http://127.0.0.1:8080/health\")", h.HTTP)
		}
	}
	if (rh.HTTP == nil) == (len(rh.Command) == 0) {
		v.errorf(rh.DefRange, "health needs exactly one of http or command (keep one)")
	}
	if rh.Retries != nil {
		if *rh.Retries < 1 {
			v.errorf(rh.RetriesRange, "health retries %d is below 1 (use 1 or more)", *rh.Retries)
		}
		h.Retries = *rh.Retries
	}
	return h
}

// service validates a service block and renders its key and value.
func (v *validator) service(rs *rawService) *Service {
	s := &Service{
		Name: rs.Name,
		Pos:  pos(rs.DefRange),
		TTL:  v.duration(rs.TTL, rs.TTLRange, "service "+strconv.Quote(rs.Name)+" ttl", DefaultServiceTTL),
	}
	ok := true
	bad := func(r hcl.Range, format string, args ...any) {
		v.errorf(r, "service %q: "+format, append([]any{rs.Name}, args...)...)
		ok = false
	}
	if rs.TTL != nil && (s.TTL < time.Second || s.TTL%time.Second != 0) {
		bad(rs.TTLRange, "ttl %q is not a whole number of seconds of at least 1s (leases count in seconds; write it like \"10s\")", *rs.TTL)
	}
	var err error
	switch {
	case rs.Key == nil:
		bad(rs.DefRange, "has no key (set key = \"/services/web/{{ hostname }}\")")
	case strings.TrimSpace(*rs.Key) == "":
		bad(rs.KeyRange, "key is empty (write it like \"/services/web/{{ hostname }}\")")
	default:
		if s.Key, err = renderStatic("key", *rs.Key); err != nil {
			bad(rs.KeyRange, "%v", err)
		} else if strings.TrimSpace(s.Key) == "" {
			bad(rs.KeyRange, "key %q renders empty (make it name a key like \"/services/web/{{ hostname }}\")", *rs.Key)
		}
	}
	if rs.Value == nil {
		bad(rs.DefRange, "has no value (set value = \"10.0.0.1:8080\" or JSON like {\"address\":\"10.0.0.1\",\"port\":8080})")
	} else if s.Value, err = renderStatic("value", *rs.Value); err != nil {
		bad(rs.ValueRange, "%v", err)
	} else if v := strings.TrimSpace(s.Value); strings.HasPrefix(v, "{") && !json.Valid([]byte(v)) {
		bad(rs.ValueRange, "value %s starts like JSON but does not decode (fix the JSON, e.g. {\"address\":\"10.0.0.1\",\"port\":8080}, or write host:port)", v)
	}
	if rs.Check != nil {
		s.Check = v.serviceCheck(rs, bad)
	}
	if !ok {
		return nil
	}
	return s
}

// status validates the status block and renders its key.
func (v *validator) status(rs *rawStatus) *Status {
	s := &Status{
		Pos: pos(rs.DefRange),
		TTL: v.duration(rs.TTL, rs.TTLRange, "status ttl", DefaultStatusTTL),
	}
	ok := true
	bad := func(r hcl.Range, format string, args ...any) {
		v.errorf(r, "status: "+format, args...)
		ok = false
	}
	if rs.TTL != nil && (s.TTL < time.Second || s.TTL%time.Second != 0) {
		bad(rs.TTLRange, "ttl %q is not a whole number of seconds of at least 1s (leases count in seconds; write it like \"30s\")", *rs.TTL)
	}
	text, at := DefaultStatusKey, rs.DefRange
	if rs.Key != nil {
		text, at = *rs.Key, rs.KeyRange
	}
	var err error
	switch {
	case strings.TrimSpace(text) == "":
		bad(at, "key is empty (leave it out for %q, or write it like \"/tend/fleet/myapp/{{ hostname }}\")", DefaultStatusKey)
	default:
		if s.Key, err = renderWithout("key", text, errStatusNoStore); err != nil {
			bad(at, "%v", err)
		} else if strings.TrimSpace(s.Key) == "" {
			bad(at, "key %q renders empty (make it name a key like %q)", text, DefaultStatusKey)
		}
	}
	if !ok {
		return nil
	}
	return s
}

// telemetry validates the telemetry block: listen must be an address the
// agent can listen on, written host:port.
func (v *validator) telemetry(rt *rawTelemetry) *Telemetry {
	t := &Telemetry{Pos: pos(rt.DefRange)}
	if rt.Listen == nil {
		v.errorf(rt.DefRange, "telemetry has no listen (set listen = \"127.0.0.1:9102\")")
		return nil
	}
	t.Listen = *rt.Listen
	host, port, err := net.SplitHostPort(t.Listen)
	if err != nil {
		v.errorf(rt.ListenRange, "telemetry listen %q is not host:port (write it like \"127.0.0.1:9102\", or \":9102\" for every interface)", t.Listen)
		return nil
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		v.errorf(rt.ListenRange, "telemetry listen %q: port %q is not a number from 0 to 65535 (write it like \"127.0.0.1:9102\")", t.Listen, port)
		return nil
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		v.errorf(rt.ListenRange, "telemetry listen %q: host %q is not an IP address (write it like \"127.0.0.1:9102\", or \":9102\" for every interface)", t.Listen, host)
		return nil
	}
	return t
}

func (v *validator) serviceCheck(rs *rawService, bad func(hcl.Range, string, ...any)) *ServiceCheck {
	rc := rs.Check
	what := "service " + strconv.Quote(rs.Name) + " check"
	c := &ServiceCheck{
		ExpectStatus: rc.ExpectStatus,
		Command:      rc.Command,
		Interval:     v.duration(rc.Interval, rc.IntervalRange, what+" interval", DefaultProbeEvery),
	}
	c.Timeout = v.duration(rc.Timeout, rc.TimeoutRange, what+" timeout", min(DefaultProbeTimeout, c.Interval))
	if rc.Interval != nil && c.Interval == 0 {
		bad(rc.IntervalRange, "check interval is zero (write it like \"5s\")")
	}
	if rc.Timeout != nil && c.Timeout == 0 {
		bad(rc.TimeoutRange, "check timeout is zero (write it like \"2s\")")
	}
	if c.Timeout > c.Interval && c.Interval > 0 {
		bad(rc.TimeoutRange, "check timeout %s is above its interval %s (make timeout at most interval)", c.Timeout, c.Interval)
	}
	if rc.HTTP == nil && rc.Command == nil {
		bad(rc.DefRange, "check needs http, command or both (e.g. http = \"http://127.0.0.1:8080/health\")")
	}
	if rc.HTTP != nil {
		u, err := renderStatic("check http", *rc.HTTP)
		if err != nil {
			bad(rc.HTTPRange, "%v", err)
		} else if pu, perr := url.Parse(u); perr != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(rc.HTTPRange, "check http %q is not an http(s) URL (write it like \"http://127.0.0.1:8080/health\")", u)
		}
		c.HTTP = u
	}
	if rc.Command != nil && (len(rc.Command) == 0 || rc.Command[0] == "") {
		bad(rc.CommandRange, "check command is empty (write it like [\"pg_isready\", \"-q\"])")
	}
	for _, code := range rc.ExpectStatus {
		if code < 100 || code > 599 {
			bad(rc.ExpectStatusRange, "check expect_status %d is not an HTTP status (use codes from 100 to 599, e.g. [200, 204])", code)
		}
	}
	if rc.ExpectStatus != nil && rc.HTTP == nil {
		bad(rc.ExpectStatusRange, "check has expect_status but no http (add http = \"http://...\" or drop expect_status)")
	}
	return c
}

// renderStatic renders a service's key, value or check URL: a template that
// may use hostname, env and sprig functions, but not the store, which the
// configuration is loaded without.
func renderStatic(what, text string) (string, error) {
	return renderWithout(what, text, errNoStore)
}

// renderWithout renders text as renderStatic does; a store read fails
// with noRead.
func renderWithout(what, text string, noRead error) (string, error) {
	t, err := templates.Parse(what, text, templates.Options{})
	if err != nil {
		return "", err
	}
	out, _, err := t.Render(noStore{noRead})
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// noStore is the view service templates render against: every read fails
// with err.
type noStore struct{ err error }

var errNoStore = errors.New("a service's key, value and check are rendered once when the configuration loads and cannot read the store (use hostname, env or literal values)")

func (n noStore) Get(string) ([]byte, bool, error)    { return nil, false, n.err }
func (n noStore) List(string) ([]templates.KV, error) { return nil, n.err }

var errStatusNoStore = errors.New("the status key is rendered once when the configuration loads and cannot read the store (use hostname, env or literal values)")

// validEndpoint accepts what clientv3 dials: an http(s) URL with a host, or
// a bare host:port.
func validEndpoint(e string) bool {
	if !strings.Contains(e, "://") {
		host, port, err := net.SplitHostPort(e)
		return err == nil && host != "" && port != ""
	}
	u, err := url.Parse(e)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
