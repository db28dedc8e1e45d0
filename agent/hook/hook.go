package hook

import (
	"context"
	"errors"
	"log/slog"
	"os"
)

// Hook is one named, validated action.
type Hook interface {
	// Name is the hook's name as written in the configuration.
	Name() string
	// Run performs the action once. An error names the hook and what failed.
	Run(ctx context.Context, env Env) error
}

// Env is what a hook may use when it runs.
type Env struct {
	// Render renders a template string (e.g. an HTTP body) against the
	// change's revision. May be nil: text is then used as written.
	Render func(text string) (string, error)
	// Processes holds the supervised processes that restart hooks and
	// named-signal hooks act on. May be nil.
	Processes ProcessRegistry
	// Logger receives one line per hook decision worth logging. May be nil.
	Logger *slog.Logger
}

// ProcessRegistry is the part of the process supervisor hooks use. Its errors
// name the action and the process (`restart process "app": ...`); hooks only
// prefix them with the hook's name.
type ProcessRegistry interface {
	// Restart stops the named process gracefully and starts it again.
	Restart(ctx context.Context, name string) error
	// Signal sends sig to the named process.
	Signal(name string, sig os.Signal) error
}

func (e Env) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// checkName reports a problem with a hook name, or nil.
func checkName(name string) error {
	if name == "" {
		return errors.New(`hook has no name (give it one: hook "reload-nginx" { ... })`)
	}
	return nil
}
