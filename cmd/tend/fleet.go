package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/fleet"
)

// defaultFleetPrefix is where agents publish with the status block's
// default key.
var defaultFleetPrefix = strings.TrimSuffix(config.DefaultStatusKey, "{{ hostname }}")

// newFleetCmd is `tend fleet`: what the agents report about themselves.
func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "What the agents publish: which host applied which revision",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(newFleetStatusCmd(cf))
	return cmd
}

// fleetOptions are the flags of fleet status.
type fleetOptions struct {
	fleet.Options
	wait time.Duration
}

func newFleetStatusCmd(cf *clientFlags) *cobra.Command {
	var o fleetOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List each agent's templates: revision on disk, last outcome, when applied",
		Long: `List the status the agents publish under --prefix (agents with a status
block in their configuration): one row per host and template with the
revision of the file on disk, the outcome of the last attempt, when the file
was last replaced, and the last error. HOST is the entry's key below
--prefix: the host name, with the status block's default key.

--revision N marks the templates whose file is older than N, or whose last
attempt failed, and exits 1 naming them, so that a CI job can check a
rollout: N is the revision of the change (tend put -w json prints it). A
template that does not read the changed keys is not rendered again and
keeps its older revision; name the templates to check with --template.
--wait DURATION watches --prefix until every template reaches N or the
duration passes; a host whose entry goes meanwhile (its agent stopped, or
lost the store for longer than its ttl) counts as not reached. A host whose
agent never published is not listed: --hosts N requires N entries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.checkWriteOut("fleet status", "simple", "table", "json"); err != nil {
				return err
			}
			if o.Prefix == "" {
				return badArgs("--prefix is empty (give the prefix of the agents' status keys, e.g. --prefix " + defaultFleetPrefix + ")")
			}
			if o.Revision < 0 {
				return badArgs("--revision must be a store revision, 1 or more")
			}
			if o.wait < 0 {
				return badArgs("--wait must not be negative (e.g. --wait 2m)")
			}
			if o.Hosts < 0 {
				return badArgs("--hosts must not be negative (the number of agents that must publish)")
			}
			if (o.wait > 0 || o.Hosts > 0) && o.Revision == 0 {
				if o.Hosts > 0 {
					return badArgs("--hosts needs --revision N, the revision the hosts must reach")
				}
				return badArgs("--wait needs --revision N, the revision to wait for (e.g. the revision tend put -w json prints)")
			}
			return fleetStatus(cmd, cf, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Prefix, "prefix", defaultFleetPrefix, "the prefix of the agents' status keys")
	f.Int64Var(&o.Revision, "revision", 0, "mark the templates below this revision or whose last attempt failed, and exit 1 if any is")
	f.DurationVar(&o.wait, "wait", 0, "with --revision: watch until every template reaches it, for at most this long")
	f.StringSliceVar(&o.Templates, "template", nil, "only these templates (comma-separated or repeated)")
	f.IntVar(&o.Hosts, "hosts", 0, "with --revision: the number of hosts that must publish (fewer is not reached)")
	return cmd
}

// fleetStatus reads (and with --wait watches) the prefix, prints the rows
// and reports the laggards.
func fleetStatus(cmd *cobra.Command, cf *clientFlags, o fleetOptions) error {
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	o.Timeout = cf.commandTimeout
	v := fleet.NewView(o.Options)
	err = v.Read(ctx, cli)
	if err == nil && o.wait > 0 {
		err = v.Wait(ctx, cli, o.wait)
	}
	if err != nil {
		return cf.requestError("read the fleet status under "+o.Prefix, err)
	}
	r := v.Report()
	if err := printFleet(cmd.OutOrStdout(), cf.writeOut, r, o.Options); err != nil {
		return err
	}
	switch {
	case v.Empty():
		msg := "no agent publishes its status under " + o.Prefix + " (give the agents a status block, or set --prefix to their status keys' prefix)"
		if o.Revision > 0 {
			return errors.New(msg)
		}
		fmt.Fprintln(cmd.ErrOrStderr(), msg)
	case len(r.Laggards) > 0:
		return laggardError(r.Laggards, o)
	}
	return nil
}

// laggardError names what has not reached the revision, and what to do.
func laggardError(lag []fleet.Laggard, o fleetOptions) error {
	var parts []string
	for i, l := range lag {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(lag)-i))
			break
		}
		name := l.Host
		if l.Template != "" {
			name += "/" + l.Template
		}
		switch l.State {
		case fleet.Missing:
			parts = append(parts, l.Error)
		case fleet.Behind:
			parts = append(parts, fmt.Sprintf("%s at revision %d (%s)", name, l.Revision, l.Outcome))
		case fleet.Failed:
			parts = append(parts, fmt.Sprintf("%s %s at revision %d: %s", name, l.Outcome, l.Revision, oneLine(l.Error, 200)))
		default:
			parts = append(parts, fmt.Sprintf("%s %s: %s", name, l.State, l.Error))
		}
	}
	states := map[string]bool{}
	for _, l := range lag {
		states[l.State] = true
	}
	var hints []string
	if states[fleet.Failed] || states[fleet.Invalid] {
		hints = append(hints, "fix what the error says on those hosts and put the change again")
	}
	if states[fleet.Behind] || states[fleet.Missing] || states[fleet.Gone] {
		if o.wait > 0 {
			hints = append(hints, "wait longer than --wait "+o.wait.String())
		} else {
			hints = append(hints, "give --wait 2m to wait for the agents")
		}
	}
	if states[fleet.Behind] && len(o.Templates) == 0 {
		hints = append(hints, "a template that does not read the changed keys keeps its older revision: name the ones to check with --template")
	}
	if states[fleet.Gone] || states[fleet.Missing] {
		hints = append(hints, "start the missing hosts' agents, with a status block")
	}
	what := strings.Join(hints, "; ")
	return fmt.Errorf("revision %d not reached: %s (%s)", o.Revision, strings.Join(parts, "; "), what)
}

var fleetHeader = []string{"host", "template", "revision", "outcome", "applied", "error"}

// printFleet writes the report's hosts as rows (or JSON) to w.
func printFleet(w io.Writer, format string, r fleet.Report, o fleet.Options) error {
	if format == "json" {
		return printJSON(w, r)
	}
	state := map[string]string{}
	for _, l := range r.Laggards {
		state[l.Host+"\x00"+l.Template] = l.State
	}
	header := fleetHeader
	if o.Revision > 0 {
		header = append(slices.Clone(fleetHeader), "state")
	}
	now := time.Now()
	var rows [][]string
	for _, h := range r.Hosts {
		mark := func(template string) []string {
			if o.Revision == 0 {
				return nil
			}
			if s := state[h.Name+"\x00"+template]; s != "" {
				return []string{s}
			}
			return []string{"ok"}
		}
		if h.Status == nil {
			rows = append(rows, append([]string{h.Name, "-", "-", "invalid", "-", oneLine(h.Invalid, 80)}, mark("")...))
			continue
		}
		n := 0
		for _, s := range h.Status.Templates {
			if !o.Wants(s.Template) {
				continue
			}
			n++
			rows = append(rows, append([]string{h.Name, s.Template, strconv.FormatInt(s.Revision, 10), s.Outcome, ago(now, s.AppliedAt), oneLine(s.Error, 80)}, mark(s.Template)...))
		}
		if n == 0 && len(o.Templates) == 0 {
			rows = append(rows, append([]string{h.Name, "-", "-", "-", "-", ""}, mark("-")...))
		}
	}
	for _, l := range r.Laggards {
		if l.State == fleet.Gone {
			rows = append(rows, append([]string{l.Host, "-", "-", "-", "-", oneLine(l.Error, 80)}, fleet.Gone))
		}
	}
	if format == "table" {
		printTable(w, header, rows)
		return nil
	}
	printRows(w, rows)
	return nil
}

// ago says how long before now t was, in the largest whole unit; "-" for
// the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-3]) + "..."
	}
	return s
}
