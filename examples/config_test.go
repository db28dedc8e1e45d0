package examples

import (
	"path/filepath"
	"testing"
)

// Every example's agent configuration loads as written: block names, hook
// references, template syntax, durations, signals.
func TestConfigsLoad(t *testing.T) {
	for _, tc := range []struct {
		example, file string
		templates     int
		hooks         int
		processes     int
		services      int
	}{
		{"springboot", "agent.hcl", 1, 1, 1, 0},
		{"springboot", "whole-file/agent.hcl", 1, 1, 1, 0},
		{"loglevel", "agent.hcl", 3, 3, 1, 0},
		{"loglevel", "java/agent.hcl", 1, 0, 1, 0},
		{"nginx", "agent.hcl", 1, 1, 1, 0},
		{"nginx", "backend.hcl", 0, 0, 0, 1},
	} {
		t.Run(tc.example+"/"+tc.file, func(t *testing.T) {
			dir := copyExample(t, tc.example)
			cfg := loadConfig(t, filepath.Join(dir, tc.file))
			if len(cfg.Templates) != tc.templates || len(cfg.Hooks) != tc.hooks || len(cfg.Processes) != tc.processes || len(cfg.Services) != tc.services {
				t.Errorf("%d templates, %d hooks, %d processes, %d services; want %d, %d, %d, %d",
					len(cfg.Templates), len(cfg.Hooks), len(cfg.Processes), len(cfg.Services), tc.templates, tc.hooks, tc.processes, tc.services)
			}
			for _, tp := range cfg.Templates {
				if rel, err := filepath.Rel(dir, tp.Destination); err != nil || filepath.IsAbs(rel) || rel[0] == '.' {
					t.Errorf("template %s writes %s, outside the example folder", tp.Name, tp.Destination)
				}
			}
		})
	}
}
