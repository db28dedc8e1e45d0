package templates

import (
	"fmt"
	"runtime"
	"testing"
)

// Every place a function can be called from still finds it: a template
// keeps only the functions its text calls.
func TestFunctionsInEveryConstruct(t *testing.T) {
	text := `{{ define "x" }}{{ upper . }}{{ end -}}
{{ range $i, $v := (list 1 2) }}{{ if eq $v 1 }}{{ template "x" (lower "A") }}{{ else }}{{ with (sub $v 5) | lt 0 }}no{{ else with (add $v 1) }}{{ printf "%d" . | trim }}{{ end }}{{ end }}{{ end }}
{{ (dict "a" (lower "B")).a }} {{ with $k := key "/k" }}{{ quote $k }}{{ end }} {{ block "y" (keyOrDefault "/none" "d") }}{{ repeat 2 . }}{{ end }}
{{ range ls "/p/" }}{{ .Rel | title }}{{ else }}none{{ end }} {{ if not (exists "/none") }}{{ len (kvs "/p/") }}{{ end }}`
	out, _, err := mustParse(t, "all", text, Options{}).Render(mapView{"/k": "v", "/p/a": "1", "/p/b": "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "A3\nb \"v\" dd\nAB 2"
	if string(out) != want {
		t.Errorf("render =\n%q\nwant\n%q", out, want)
	}
}

// A parsed template holds its parse tree and the few functions it calls,
// not a copy of sprig's whole function map: a hundred of them, each rendered
// once, stay well under a megabyte.
func TestParsedTemplatesAreSmall(t *testing.T) {
	const n = 100
	kept := make([]*Template, 0, n)
	v := mapView{"/p/a": "1", "/p/b": "2"}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		tmpl := mustParse(t, fmt.Sprint("t", i), `{{ range ls "/p/" }}{{ .Rel }}={{ .Value | trim }}{{ end }}`, Options{})
		if _, _, err := tmpl.Render(v); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, tmpl)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes per parsed and rendered template", per)
	if per > 8<<10 {
		t.Errorf("%d bytes per parsed and rendered template, want under 8 KiB", per)
	}
	runtime.KeepAlive(kept)
}
