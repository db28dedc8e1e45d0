package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// loaded is the answer of GET /loaded.
type loaded struct {
	File       string            `json:"file"`
	PID        int               `json:"pid"`
	Started    time.Time         `json:"started"`
	Properties map[string]string `json:"properties"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	config := fs.String("config", "application.yml", "the application.yml to read")
	address := fs.String("address", "127.0.0.1", "address to listen on")
	port := fs.Int("port", -1, "port to listen on; overrides server.port (0 picks a free one)")
	check := fs.Bool("check", false, "only check the file (as tend's check command) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	started := time.Now()
	data, err := os.ReadFile(*config)
	if err != nil {
		return fmt.Errorf("read config: %w (render it first, or point --config at it)", err)
	}
	props, err := flatten(*config, data)
	if err != nil {
		return err
	}
	listen := *port
	if listen < 0 {
		listen = 8080
		if p, ok := props["server.port"]; ok {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("%s: server.port %q is not a port number (write a number from 0 to 65535)", *config, p)
			}
			listen = n
		}
	}
	if *check {
		fmt.Printf("app: %s is good (%d properties, port %d)\n", *config, len(props), listen)
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(*address, strconv.Itoa(listen)))
	if err != nil {
		return fmt.Errorf("listen: %w (is the port in use? change server.port or pass --port)", err)
	}
	body, err := json.Marshal(loaded{File: *config, PID: os.Getpid(), Started: started, Properties: props})
	if err != nil {
		return fmt.Errorf("encode properties: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /loaded", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Printf("app: loaded %d properties from %s; serving on http://%s (pid %d)\n", len(props), *config, l.Addr(), os.Getpid())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
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
