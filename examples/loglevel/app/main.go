package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	address := fs.String("address", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 8080, "port to listen on (0 picks a free one)")
	names := fs.String("loggers", "com.example.orders,com.example.payments", "comma-separated loggers that log in the loop")
	interval := fs.Duration("interval", 200*time.Millisecond, "how often each logger logs a DEBUG and an INFO line")
	levelsDir := fs.String("levels", "", "folder of files named after loggers, each holding the level to start with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval %v: give a positive duration like 200ms", *interval)
	}
	var loggers []string
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			loggers = append(loggers, n)
		}
	}
	reg := newRegistry(loggers)
	if *levelsDir != "" {
		if err := loadLevels(reg, *levelsDir); err != nil {
			return err
		}
	}

	l, err := net.Listen("tcp", net.JoinHostPort(*address, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w (is the port in use? pass another --port)", err)
	}
	srv := &http.Server{Handler: handler(reg), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		logLoop(ctx, reg, loggers, *interval)
	}()
	fmt.Printf("app: actuator on http://%s/actuator/loggers (pid %d)\n", l.Addr(), os.Getpid())

	var serveErr error
	select {
	case serveErr = <-served:
		stop()
	case <-ctx.Done():
	}
	<-logged
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Println("app: stopped")
	return nil
}

// loadLevels sets the level of each logger that has a file in dir (named
// after the logger, holding its level; an empty file means inherit), as
// Spring Boot applies logging.level.* from its configuration at start.
func loadLevels(reg *registry, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read levels: %w (create the folder or drop --levels)", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("read levels: %w", err)
		}
		level := strings.TrimSpace(string(b))
		if err := reg.set(e.Name(), level); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err)
		}
		if level != "" {
			fmt.Printf("app: logger %s starts at %s (from %s)\n", canonical(e.Name()), strings.ToUpper(level), dir)
		}
	}
	return nil
}

// logLoop prints each logger's lines every interval until ctx is done.
func logLoop(ctx context.Context, reg *registry, loggers []string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var b bytes.Buffer
		now := time.Now().Format("15:04:05.000")
		for _, name := range loggers {
			for _, level := range []string{"DEBUG", "INFO"} {
				if reg.enabled(name, level) {
					fmt.Fprintf(&b, "%s %-5s %s - %s line %d\n", now, level, name, strings.ToLower(level), n)
				}
			}
		}
		os.Stdout.Write(b.Bytes())
	}
}

const prefix = "/actuator/loggers"

func handler(reg *registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix, func(w http.ResponseWriter, _ *http.Request) {
		names, states := reg.all()
		// Write the loggers in the actuator's order; a Go map would sort them.
		var b bytes.Buffer
		b.WriteString(`{"levels":`)
		lv, _ := json.Marshal(levels)
		b.Write(lv)
		b.WriteString(`,"loggers":{`)
		for i, n := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n)
			v, _ := json.Marshal(states[n])
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteString(`},"groups":{}}`)
		writeJSON(w, b.Bytes())
	})
	mux.HandleFunc("GET "+prefix+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := reg.get(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, _ := json.Marshal(s)
		writeJSON(w, b)
	})
	mux.HandleFunc("POST "+prefix+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			ConfiguredLevel *string `json:"configuredLevel"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				http.Error(w, `body: `+err.Error()+` (send {"configuredLevel":"DEBUG"} or {"configuredLevel":null})`, http.StatusBadRequest)
				return
			}
		}
		level := ""
		if req.ConfiguredLevel != nil {
			level = *req.ConfiguredLevel
		}
		name := r.PathValue("name")
		if err := reg.set(name, level); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		shown := level
		if shown == "" {
			shown = "null"
		}
		fmt.Printf("app: logger %s configured level %s\n", canonical(name), strings.ToUpper(shown))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/vnd.spring-boot.actuator.v3+json")
	w.Write(b)
}
