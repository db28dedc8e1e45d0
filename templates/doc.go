// Package templates renders Go text/templates (with sprig and store
// functions) against a read-only view of the keyspace at one revision, and
// reports which keys and prefixes each render read. It is pure: no network,
// no files, testable without a server.
//
// # Contract
//
//  1. Parse the text once (Parse); a syntax error names the template and
//     line: `app.yml.tmpl:3: function "kye" not defined (did you mean "key"?)`.
//  2. For each revision, Render against a View pinned to it. The output is
//     a function of the text, the options and the view's contents only
//     (unless the template calls sprig's clock, random or environment
//     functions).
//  3. Watch what Render's Deps name: every key a function looked up (found
//     or not) and every prefix it listed. Deps are filled on error too, so a
//     render that failed on a missing key is retried when the key appears.
//  4. A render error names the place and the function:
//     `app.yml.tmpl:12:9: executing "key": missing key /myapp/production/db/url`.
//     errors.As reaches *Error (Template, Line, Col, Func),
//     *MissingKeyError, and the View's own error.
//
// Templates are safe for concurrent Renders.
//
// # Store functions
//
// A prefix argument names a folder: "/app" and "/app/" both list the keys
// under "/app/" ("/apple" is not under it, nor is "/app" itself).
//
//	key "/k"              value as a string; missing: "" or, with
//	                      ErrorOnMissingKey, a *MissingKeyError
//	keyOrDefault "/k" "d" value, or "d" when missing
//	exists "/k"           whether the key exists (alias keyExists)
//	ls "/p"               direct children that have values, as []Pair
//	                      (Key: full key, Rel: child name, Value), as
//	                      consul-template's ls; a Pair prints as its Rel,
//	                      so {{ range ls "/p" }}{{ . }}{{ end }} prints the
//	                      names as confd's ls does (confd also names the
//	                      children that are folders: lsdir lists those)
//	lsdir "/p"            names of the children that have children (confd)
//	kvs "/p"              every pair under the prefix, sorted, as []Pair
//	                      (Rel: key relative to the prefix) — what
//	                      consul-template calls tree
//	tree "/p"             the prefix as nested map[string]any and []any
//	                      (see "Trees" below)
//	services "/p"         []Service (Key, Name, Address, Port, Tags, Meta;
//	                      .HostPort) from JSON {"address":...,"port":...,
//	                      "tags":[...],"meta":{...}} or "host:port" values,
//	                      sorted by key; a malformed value fails the render
//	                      naming its key
//	getv "/k" ["d"]       confd: value, else the default, else like key
//	getvs "/p/*"          confd: values of the keys matching a path.Match
//	                      pattern, in key order
//	gets "/p/*"           confd: the matching pairs, as []Pair
//	hostname              Options.Hostname, else os.Hostname
//
// # Trees
//
// tree turns "/p/server/port" = "8080" into {"server": {"port": 8080}}:
//
//  1. Path segments below the prefix are mapping keys; empty segments are
//     dropped ("/p//a" is "/p/a"; of two keys with one path the later in key
//     order wins).
//  2. A key that is both a value and a parent ("/p/db" and "/p/db/host")
//     is a parent: the subtree wins and the key's own value is dropped. A
//     key ending in "/" (a folder marker) is an empty mapping unless
//     something is under it.
//  3. When all children have all-digit names the node is a list, ordered by
//     value ("2" before "10"; gaps close up).
//  4. Leaves are typed as a person types them in YAML: "true" and "false"
//     are bools, integers in canonical form ("8080", "-7"; not "0123" or
//     "+7") are ints, decimals that read back the same ("1.5"; not "1.50",
//     "1.0" or "1e3") are float64s; everything else stays a string.
//
// {{ tree "/p" | toYaml }} then gives the application.yml a person would
// write: sorted keys, 2-space indentation, lists under their key, numbers
// and booleans plain, strings quoted only when a YAML 1.1 reader (SnakeYAML
// in Spring Boot) or a YAML 1.2 reader would otherwise misread them ("yes",
// "on", "0123", "1e3", "1.10", "2024-01-01", "", "a: b", "- x"), multi-line
// strings as literal blocks. Like Helm's, toYaml drops the final newline:
// end the line in the template.
//
// # Other functions
//
// All of sprig v3 (text flavour) except getHostByName (no DNS in a render);
// sprig's keys and values are replaced by sorted versions. Added where sprig
// lacks them: toYaml (alias toYAML),
// fromYaml (parseYAML), toJSON, toJSONPretty, parseJSON, json and jsonArray
// (confd), parseBool, parseInt, parseFloat, toUpper, toLower, base64Encode,
// base64Decode, getenv "NAME" ["default"], datetime.
//
// Where sprig and confd disagree, sprig wins: split returns sprig's map (use
// splitList SEP S for confd's split S SEP), join is join SEP LIST, get is
// sprig's dict lookup (use getv or gets), seq returns a string (use until),
// contains and replace take sprig's argument order.
//
// # Missing values
//
// Without ErrorOnMissingKey a missing key reads as "" and a missing map
// entry (`{{ (tree "/x").port }}`) prints text/template's "<no value>": use
// keyOrDefault, getv with a default, or sprig's default. With it, both fail
// the render, which the agent treats as "keep the old file".
package templates
