package templates

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"text/template"
	"text/template/parse"
)

// View is a read-only keyspace at one revision (the agent implements it with
// clientv3 Gets pinned to one revision). Its errors should name the key or
// prefix and the action ("get /a at revision 7: ..."): a render error wraps
// them as they are, after the template's place and the function.
type View interface {
	// Get returns the value of key; ok is false when the key does not exist.
	Get(key string) (value []byte, ok bool, err error)
	// List returns every pair whose key starts with prefix, sorted by key.
	List(prefix string) ([]KV, error)
}

// KV is one key and its value, as a View lists them.
type KV struct {
	Key   string
	Value []byte
}

// Deps is what a render read: exact keys and whole prefixes, sorted,
// deduplicated. A key a render looked for and did not find is listed too, so
// a watcher learns when it appears.
type Deps struct {
	Keys     []string
	Prefixes []string
}

// Options change how a template is parsed and rendered.
type Options struct {
	// ErrorOnMissingKey makes `key` and `getv` (without a default) of a
	// missing key fail the render with a *MissingKeyError, and a missing map
	// entry (`{{ (tree "/x").port }}`) fail it too; otherwise they give the
	// empty string (and text/template's "<no value>" for map entries).
	ErrorOnMissingKey bool
	// Hostname returns the host's name for `hostname`; nil means os.Hostname.
	Hostname func() (string, error)
	// Delims are the action delimiters; empty means "{{" and "}}".
	Delims [2]string
}

// Template is a parsed template. It is safe for concurrent Renders.
type Template struct {
	name string
	opts Options
	tmpl *template.Template
	// pool holds clones of tmpl with the store functions bound to their
	// own render state, so a Render neither clones nor rebinds.
	pool sync.Pool
}

// Parse parses text; name is used in errors (the agent passes the source file
// path or "template NAME").
func Parse(name, text string, opts Options) (*Template, error) {
	t := template.New(name)
	if opts.ErrorOnMissingKey {
		t.Option("missingkey=error")
	}
	if opts.Delims[0] != "" || opts.Delims[1] != "" {
		t.Delims(opts.Delims[0], opts.Delims[1])
	}
	t.Funcs(baseFuncs()).Funcs((&render{}).funcs())
	if _, err := t.Parse(text); err != nil {
		return nil, parseError(name, err)
	}
	lean, err := leanCopy(t, opts)
	if err != nil {
		return nil, parseError(name, err)
	}
	return &Template{name: name, opts: opts, tmpl: lean}, nil
}

// leanCopy returns a template holding t's parse trees but only the
// functions they call. text/template copies the whole function map (sprig's
// two hundred functions) into every template and every clone of it; with
// a hundred templates that copy was most of the agent's heap.
func leanCopy(t *template.Template, opts Options) (*template.Template, error) {
	used := map[string]bool{}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			calledFuncs(tt.Tree.Root, used)
		}
	}
	base := baseFuncs()
	funcs := template.FuncMap{}
	for name := range used {
		if f, ok := base[name]; ok {
			funcs[name] = f
		}
	}
	lean := template.New(t.Name()).Funcs(funcs)
	if opts.ErrorOnMissingKey {
		lean.Option("missingkey=error")
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		if _, err := lean.AddParseTree(tt.Name(), tt.Tree); err != nil {
			return nil, err
		}
	}
	return lean, nil
}

// calledFuncs adds the names of the functions that n and the nodes under it
// call to used.
func calledFuncs(n parse.Node, used map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			calledFuncs(c, used)
		}
	case *parse.ActionNode:
		calledFuncs(n.Pipe, used)
	case *parse.IfNode:
		calledBranch(&n.BranchNode, used)
	case *parse.RangeNode:
		calledBranch(&n.BranchNode, used)
	case *parse.WithNode:
		calledBranch(&n.BranchNode, used)
	case *parse.TemplateNode:
		calledFuncs(n.Pipe, used)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			calledFuncs(c, used)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			calledFuncs(a, used)
		}
	case *parse.ChainNode:
		calledFuncs(n.Node, used)
	case *parse.IdentifierNode:
		used[n.Ident] = true
	}
}

func calledBranch(b *parse.BranchNode, used map[string]bool) {
	calledFuncs(b.Pipe, used)
	calledFuncs(b.List, used)
	calledFuncs(b.ElseList, used)
}

// Name returns the name the template was parsed with.
func (t *Template) Name() string { return t.name }

// Render executes the template against v. On error the returned Deps still
// lists what was read (the agent must watch it).
//
// Under ErrorOnMissingKey a render that misses keys runs twice: once going
// on past missing keys, to learn all of them (MissingKeyError.Keys) and
// everything the template would read, then once stopping at the first, to
// learn its place.
func (t *Template) Render(v View) ([]byte, Deps, error) {
	out, deps, missing, err := t.execute(v, t.opts.ErrorOnMissingKey)
	if len(missing) == 0 {
		return out, deps, err
	}
	_, deps2, _, err := t.execute(v, false)
	var mk *MissingKeyError
	if errors.As(err, &mk) {
		// Report them all, in the order the template asks for them.
		mk.Keys = append(mk.Keys[:0], missing...)
	}
	if err == nil {
		err = &Error{Template: t.name, Func: "key", Err: &MissingKeyError{Template: t.name, Keys: missing}}
	}
	return nil, mergeDeps(deps, deps2), err
}

// bound is a clone of the template whose store functions read through r.
type bound struct {
	tmpl *template.Template
	r    *render
}

// execute runs the template once; when collect is set, missing keys are
// noted and returned instead of failing the render.
func (t *Template) execute(v View, collect bool) ([]byte, Deps, []string, error) {
	b, _ := t.pool.Get().(*bound)
	if b == nil {
		clone, err := t.tmpl.Clone()
		if err != nil {
			return nil, Deps{}, nil, fmt.Errorf("clone template %s: %w", t.name, err)
		}
		r := &render{opts: t.opts, tmplName: t.name, keys: map[string]bool{}, prefixes: map[string]bool{}}
		clone.Funcs(r.funcs())
		b = &bound{tmpl: clone, r: r}
	}
	b.r.view, b.r.collect = v, collect
	var buf bytes.Buffer
	err := b.tmpl.Execute(&buf, nil)
	deps := b.r.deps()
	missing := slices.Clone(b.r.missingKeys)
	b.r.reset()
	t.pool.Put(b)
	if err != nil {
		return nil, deps, missing, execError(t.name, err)
	}
	return buf.Bytes(), deps, missing, nil
}

func mergeDeps(a, b Deps) Deps {
	merge := func(x, y []string) []string {
		out := append(slices.Clone(x), y...)
		slices.Sort(out)
		return slices.Compact(out)
	}
	return Deps{Keys: merge(a.Keys, b.Keys), Prefixes: merge(a.Prefixes, b.Prefixes)}
}

// render is the state of one Render: the view it reads and what it read.
type render struct {
	view     View
	opts     Options
	tmplName string
	keys     map[string]bool
	prefixes map[string]bool
	host     *string
	// collect makes a missing key under ErrorOnMissingKey read as "" and
	// land in missingKeys instead of failing the render.
	collect     bool
	missingKeys []string
}

// reset forgets the view and what was read, for the next Render.
func (r *render) reset() {
	r.view = nil
	r.host = nil
	r.collect = false
	r.missingKeys = r.missingKeys[:0]
	clear(r.keys)
	clear(r.prefixes)
}

func (r *render) deps() Deps {
	return Deps{Keys: sortedSet(r.keys), Prefixes: sortedSet(r.prefixes)}
}

func sortedSet(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *render) hostname() (string, error) {
	if r.host != nil {
		return *r.host, nil
	}
	f := r.opts.Hostname
	if f == nil {
		f = os.Hostname
	}
	h, err := f()
	if err != nil {
		return "", fmt.Errorf("read hostname: %w", err)
	}
	r.host = &h
	return h, nil
}
