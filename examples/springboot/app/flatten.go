package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"gopkg.in/yaml.v3"
)

// flatten reads every YAML document in data and returns Spring Boot's
// property names and values. name is the file, for messages.
func flatten(name string, data []byte) (map[string]string, error) {
	props := map[string]string{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return props, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (fix the YAML; indent with spaces, not tabs)", name, err)
		}
		if len(doc.Content) == 0 {
			continue // an empty document
		}
		top := resolve(doc.Content[0])
		if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
			continue // a document holding only comments or "~"
		}
		if top.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d:%d: the top level is a %s, not a mapping (write keys like \"server:\" at the start of a line)", name, top.Line, top.Column, kind(top))
		}
		if err := walk(name, "", top, props, 0); err != nil {
			return nil, err
		}
	}
}

// maxDepth bounds nesting, so that alias cycles end.
const maxDepth = 64

// walk adds the properties under n, whose own name is prefix.
func walk(file, prefix string, n *yaml.Node, props map[string]string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s:%d:%d: %s is nested more than %d levels deep (are aliases looping?)", file, n.Line, n.Column, prefix, maxDepth)
	}
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s:%d:%d: a key under %q is a %s (keys must be plain names)", file, k.Line, k.Column, prefix, kind(k))
			}
			if k.Tag == "!!merge" {
				if err := walk(file, prefix, n.Content[i+1], props, depth+1); err != nil {
					return err
				}
				continue
			}
			name := k.Value
			if prefix != "" {
				name = prefix + "." + k.Value
			}
			if err := walk(file, name, n.Content[i+1], props, depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if err := walk(file, prefix+"["+strconv.Itoa(i)+"]", item, props, depth+1); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			props[prefix] = ""
		} else {
			props[prefix] = n.Value
		}
	default:
		return fmt.Errorf("%s:%d:%d: %s holds a %s this reader does not know", file, n.Line, n.Column, prefix, kind(n))
	}
	return nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "node"
}
