package hook

import (
	"context"
	"fmt"
)

// Restart is a hook that restarts a supervised process.
type Restart struct {
	name    string
	process string
}

// NewRestart returns a hook that restarts the supervised process named
// process.
func NewRestart(name, process string) (Hook, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if process == "" {
		return nil, fmt.Errorf("hook %q: restart names no process (set process to the name of a process block)", name)
	}
	return &Restart{name: name, process: process}, nil
}

// Name returns the hook's name.
func (h *Restart) Name() string { return h.name }

// Run restarts the process and returns once the new one has started.
func (h *Restart) Run(ctx context.Context, env Env) error {
	if env.Processes == nil {
		return fmt.Errorf("hook %q: restart process %q: no supervised processes (declare process %q in the agent config)", h.name, h.process, h.process)
	}
	if err := env.Processes.Restart(ctx, h.process); err != nil {
		return fmt.Errorf("hook %q: %w", h.name, err)
	}
	env.logger().Info("hook restarted process", "hook", h.name, "process", h.process)
	return nil
}
