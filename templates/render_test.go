package templates

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"
)

// failView fails every read of a key or prefix in fail.
type failView struct {
	mapView
	fail map[string]error
}

func (v failView) Get(key string) ([]byte, bool, error) {
	if err := v.fail[key]; err != nil {
		return nil, false, err
	}
	return v.mapView.Get(key)
}

func (v failView) List(prefix string) ([]KV, error) {
	if err := v.fail[prefix]; err != nil {
		return nil, err
	}
	return v.mapView.List(prefix)
}

func mustParse(t testing.TB, name, text string, opts Options) *Template {
	t.Helper()
	tmpl, err := Parse(name, text, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestViewErrorKeepsDeps(t *testing.T) {
	boom := errors.New("get at revision 7: etcdserver: request timed out")
	v := failView{mapView: mapView{"/a": "1"}, fail: map[string]error{"/b": boom, "/c/": boom}}
	for _, tc := range []struct {
		text, wantErr string
		wantDeps      Deps
	}{
		{`{{ key "/a" }}{{ key "/b" }}{{ key "/never" }}`, `t.tmpl:1:17: executing "key": get at revision 7: etcdserver: request timed out`, Deps{Keys: []string{"/a", "/b"}}},
		{`{{ key "/a" }}{{ range ls "/c" }}{{ end }}`, `t.tmpl:1:23: executing "ls": get at revision 7: etcdserver: request timed out`, Deps{Keys: []string{"/a"}, Prefixes: []string{"/c/"}}},
		{`{{ tree "/c" | toYaml }}`, `t.tmpl:1:3: executing "tree": get at revision 7: etcdserver: request timed out`, Deps{Prefixes: []string{"/c/"}}},
	} {
		out, deps, err := mustParse(t, "t.tmpl", tc.text, Options{}).Render(v)
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%s: error %v, want %s", tc.text, err, tc.wantErr)
		}
		if !errors.Is(err, boom) {
			t.Errorf("%s: error %v does not wrap the view's error", tc.text, err)
		}
		if out != nil {
			t.Errorf("%s: output %q on error, want nil", tc.text, out)
		}
		if !reflect.DeepEqual(deps, tc.wantDeps) {
			t.Errorf("%s: deps %+v, want %+v", tc.text, deps, tc.wantDeps)
		}
	}
}

func TestMissingKeyErrorAs(t *testing.T) {
	tmpl := mustParse(t, "app.yml.tmpl", "a: {{ key \"/x\" }}\nb: {{ key \"/y\" }}\n", Options{ErrorOnMissingKey: true})
	_, deps, err := tmpl.Render(mapView{"/x": "1"})
	var mk *MissingKeyError
	if !errors.As(err, &mk) {
		t.Fatalf("error %v is not a *MissingKeyError", err)
	}
	if mk.Template != "app.yml.tmpl" || !reflect.DeepEqual(mk.Keys, []string{"/y"}) {
		t.Errorf("MissingKeyError %+v, want template app.yml.tmpl keys [/y]", mk)
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if te.Template != "app.yml.tmpl" || te.Line != 2 || te.Col == 0 || te.Func != "key" {
		t.Errorf("Error %+v, want app.yml.tmpl line 2, a column, func key", te)
	}
	if want := []string{"/x", "/y"}; !reflect.DeepEqual(deps.Keys, want) {
		t.Errorf("deps %v, want %v", deps.Keys, want)
	}
	// All the missing keys are reported, in template order, and what the
	// template reads after the first one is in the deps.
	tmpl = mustParse(t, "m.tmpl", `{{ key "/b" }}{{ getv "/a" }}{{ key "/b" }}{{ ls "/after" }}`, Options{ErrorOnMissingKey: true})
	_, deps, err = tmpl.Render(mapView{})
	if !errors.As(err, &mk) || !reflect.DeepEqual(mk.Keys, []string{"/b", "/a"}) {
		t.Errorf("error %v, want missing /b then /a", err)
	}
	if want := (Deps{Keys: []string{"/a", "/b"}, Prefixes: []string{"/after/"}}); !reflect.DeepEqual(deps, want) {
		t.Errorf("deps %+v, want %+v", deps, want)
	}
	if want := `m.tmpl:1:3: executing "key": missing key /b (also missing: /a)`; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// Without ErrorOnMissingKey the same render succeeds.
	tmpl = mustParse(t, "app.yml.tmpl", "a: {{ key \"/x\" }}\nb: {{ key \"/y\" }}\n", Options{})
	if out, _, err := tmpl.Render(mapView{"/x": "1"}); err != nil || string(out) != "a: 1\nb: \n" {
		t.Errorf("lenient render = %q, %v", out, err)
	}
}

func TestParseErrorIsError(t *testing.T) {
	_, err := Parse("t.tmpl", "a\nb {{ if }}\n", Options{})
	var te *Error
	if !errors.As(err, &te) || te.Line != 2 || te.Template != "t.tmpl" {
		t.Fatalf("parse error %#v, want an *Error at t.tmpl line 2", err)
	}
	if !strings.HasPrefix(err.Error(), "t.tmpl:2: ") {
		t.Errorf("parse error %q does not start with t.tmpl:2: ", err)
	}
}

func TestHostnameDefaultsToOS(t *testing.T) {
	want, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	out, _, err := mustParse(t, "h", "{{ hostname }}", Options{}).Render(mapView{})
	if err != nil || string(out) != want {
		t.Errorf("hostname = %q, %v; want %q", out, err, want)
	}
	fail := errors.New("no name")
	_, _, err = mustParse(t, "h", "{{ hostname }}", Options{Hostname: func() (string, error) { return "", fail }}).Render(mapView{})
	if !errors.Is(err, fail) || !strings.Contains(err.Error(), `executing "hostname": read hostname: no name`) {
		t.Errorf("hostname error = %v", err)
	}
}

// TestConcurrentRenders renders one template against different views at
// once: each render must see only its own view and report its own deps.
func TestConcurrentRenders(t *testing.T) {
	tmpl := mustParse(t, "c", `{{ key "/id" }} {{ range ls "/n" }}{{ .Value }}{{ end }} {{ if exists (printf "/only/%s" (key "/id")) }}x{{ end }}`, Options{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint(i)
			v := mapView{"/id": id, "/n/a": id, "/only/" + id: ""}
			for range 50 {
				out, deps, err := tmpl.Render(v)
				if err != nil {
					errs <- err
					return
				}
				if want := id + " " + id + " x"; string(out) != want {
					errs <- fmt.Errorf("render %s = %q, want %q", id, out, want)
					return
				}
				if want := []string{"/id", "/only/" + id}; !reflect.DeepEqual(deps.Keys, want) {
					errs <- fmt.Errorf("render %s deps %v, want %v", id, deps.Keys, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// normalize turns decoded YAML (v2 or v3) and built trees into one shape:
// map[string]any, []any, int, float64, bool, string.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalize(e)
		}
		return l
	case int64:
		return int(x)
	}
	return v
}

// checkTreeYaml renders tree|toYaml over v and checks that both a YAML 1.2
// reader (yaml.v3) and a YAML 1.1 reader (yaml.v2, which like SnakeYAML reads
// yes/on as booleans) read back exactly the tree.
func checkTreeYaml(t testing.TB, v mapView) string {
	t.Helper()
	// A template ends its last line, as a file does: toYaml drops its final
	// newline, which a literal block at the end needs.
	tmpl := mustParse(t, "t", "{{ tree \"/f\" | toYaml }}\n", Options{})
	out, _, err := tmpl.Render(v)
	kvs, _ := v.List("/f/")
	tree, treeErr := buildTree("/f/", kvs)
	if treeErr != nil {
		// Too deep: the render must fail the same way.
		if err == nil || !strings.Contains(err.Error(), treeErr.Error()) {
			t.Fatalf("tree fails with %v, but the render with %v", treeErr, err)
		}
		return ""
	}
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	want := normalize(tree)
	var got3 any
	if err := yaml.Unmarshal(out, &got3); err != nil {
		t.Fatalf("yaml.v3 cannot read the output: %v\n%s", err, out)
	}
	if got := normalize(got3); !reflect.DeepEqual(got, want) {
		t.Fatalf("yaml.v3 reads back\n%#v\nwant\n%#v\noutput:\n%s", got, want, out)
	}
	var got2 any
	if err := yaml2.Unmarshal(out, &got2); err != nil {
		t.Fatalf("yaml.v2 cannot read the output: %v\n%s", err, out)
	}
	if got := normalize(got2); !reflect.DeepEqual(got, want) {
		t.Fatalf("yaml.v2 reads back\n%#v\nwant\n%#v\noutput:\n%s", got, want, out)
	}
	return string(out)
}

func TestTreeYamlRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/tree_spring.txt", "testdata/tree_quoting.txt", "testdata/tree_lists.txt", "testdata/tree_leaf_and_parent.txt"} {
		sc := parseScenario(t, file)
		v := mapView{}
		for k, val := range scenarioKeys(t, sc.sections["keys"]) {
			// Move every scenario under /f/.
			if i := strings.IndexByte(k[1:], '/'); i >= 0 {
				v["/f"+k[i+1:]] = val
			}
		}
		checkTreeYaml(t, v)
	}
}

// FuzzTreeYaml builds a keyspace from the input (entries split by NUL, key
// and value by SOH) and checks that tree|toYaml reads back as the tree.
func FuzzTreeYaml(f *testing.F) {
	for _, seed := range []string{
		"a\x01yes\x00b/c\x011.5\x00b/d\x010123",
		"l/0\x01x\x00l/1\x01on\x00l/10\x01-\x00m/\x01",
		"k\x01line\nnext\n\x00k/x\x01 lead\x00y\x01: z",
		"x\x01\xff\xfe\x00\xff\x01v\x00t\x01\t\x00u\x01\"'\x00n\x01null\x00e\x01",
		"1\x01a\x0002\x01b\x00\x01empty key",
		"a b\x01# not a comment\x00c\x01[1, 2]\x00d\x01{a: b}\x00e\x01&anchor\x00f\x01*alias\x00g\x01!tag",
		"p\x01123456789012345678901234567890\x00q\x01-0\x00r\x010.1\x00s\x01.5\x00t\x011e3\x00u\x010x10",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v := mapView{}
		for i, entry := range strings.Split(in, "\x00") {
			if i >= 64 {
				break
			}
			k, val, _ := strings.Cut(entry, "\x01")
			v["/f/"+k] = val
		}
		checkTreeYaml(t, v)
	})
}

func BenchmarkRenderTree(b *testing.B) {
	v := mapView{}
	// 25 services of 40 keys: a list of 10 hosts, a port, 14 flags, 15 texts.
	for i := range 1000 {
		svc, j := i/40, i%40
		switch {
		case j < 10:
			v[fmt.Sprintf("/app/config/service%02d/hosts/%d", svc, j)] = fmt.Sprintf("10.0.%d.%d", svc, j)
		case j == 10:
			v[fmt.Sprintf("/app/config/service%02d/port", svc)] = fmt.Sprint(8000 + svc)
		case j < 25:
			v[fmt.Sprintf("/app/config/service%02d/flags/f%d", svc, j)] = "true"
		default:
			v[fmt.Sprintf("/app/config/service%02d/text/t%d", svc, j)] = fmt.Sprintf("value %d: with a colon", i)
		}
	}
	if len(v) != 1000 {
		b.Fatalf("%d keys, want 1000", len(v))
	}
	sv := newSortedView(v)
	tmpl := mustParse(b, "bench", "{{ tree \"/app/config\" | toYaml }}\n", Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tmpl.Render(sv); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDepsSortedAndDeduplicated(t *testing.T) {
	tmpl := mustParse(t, "d", `{{ key "/b" }}{{ key "/a" }}{{ key "/b" }}{{ exists "/a" }}{{ getv "/c" "x" }}`+
		`{{ tree "/p" }}{{ ls "/p/" }}{{ kvs "/o" }}{{ getvs "/g/*/x" }}{{ gets "/g/y*" }}{{ services "/s" }}{{ lsdir "/l" }}`, Options{})
	_, deps, err := tmpl.Render(mapView{})
	if err != nil {
		t.Fatal(err)
	}
	want := Deps{Keys: []string{"/a", "/b", "/c"}, Prefixes: []string{"/g/", "/l/", "/o/", "/p/", "/s/"}}
	if !reflect.DeepEqual(deps, want) {
		t.Errorf("deps %+v, want %+v", deps, want)
	}
	// Deps of one render do not leak into the next (renders reuse state).
	_, deps, err = mustParse(t, "e", `{{ key "/only" }}`, Options{}).Render(mapView{})
	if err != nil || !reflect.DeepEqual(deps, Deps{Keys: []string{"/only"}}) {
		t.Errorf("deps %+v, %v", deps, err)
	}
	_, deps, _ = tmpl.Render(mapView{})
	_, deps2, _ := tmpl.Render(mapView{})
	if !reflect.DeepEqual(deps, deps2) {
		t.Errorf("second render deps %+v, first %+v", deps2, deps)
	}
}

// TestRenderIsDeterministic renders a wide tree many times: Go's random map
// order must never show in the output.
func TestRenderIsDeterministic(t *testing.T) {
	v := mapView{}
	for i := range 200 {
		v[fmt.Sprintf("/d/k%03d/v%d", i%37, i)] = fmt.Sprint(i)
	}
	tmpl := mustParse(t, "d", "{{ tree \"/d\" | toYaml }}\n{{ tree \"/d\" | toJson }}\n{{ range $k, $v := tree \"/d\" }}{{ $k }}{{ keys $v | join \",\" }}{{ end }}\n", Options{})
	first, _, err := tmpl.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		out, _, err := tmpl.Render(v)
		if err != nil || string(out) != string(first) {
			t.Fatalf("render differs from the first:\n%s\nwant\n%s (err %v)", out, first, err)
		}
	}
}
