package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/tendkv/tend/auth"
	"github.com/tendkv/tend/cluster"
)

// addAuthServerFlags registers etcd's authentication flags of `tend server`:
// --auth-token, --auth-token-ttl (seconds) and --bcrypt-cost.
func addAuthServerFlags(f *pflag.FlagSet, cfg *cluster.Config) {
	cfg.AuthTokenTTL = auth.DefaultTokenTTL
	f.StringVar(&cfg.AuthToken, "auth-token", "simple", "token type: simple, or jwt,sign-method=ALG,priv-key=FILE[,pub-key=FILE][,ttl=DURATION]")
	f.Var((*secondsFlag)(&cfg.AuthTokenTTL), "auth-token-ttl", "seconds a simple token lasts without use")
	f.IntVar(&cfg.BcryptCost, "bcrypt-cost", auth.DefaultBcryptCost, "bcrypt cost for hashing passwords (4 to 31)")
}

// secondsFlag is a duration given in whole seconds, as etcd's
// --auth-token-ttl.
type secondsFlag time.Duration

func (s *secondsFlag) String() string {
	return strconv.FormatInt(int64(time.Duration(*s)/time.Second), 10)
}
func (s *secondsFlag) Type() string { return "uint" }
func (s *secondsFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("want a positive number of seconds, e.g. 300")
	}
	*s = secondsFlag(time.Duration(n) * time.Second)
	return nil
}

// readPassword gets a password as etcdctl does: with interactive, from the
// terminal without echo, asked twice; otherwise the first word on stdin.
// When stdin is not a terminal, interactive reads the first line of stdin
// instead of failing (etcdctl needs a terminal).
func readPassword(in io.Reader, prompt io.Writer, name string, interactive bool) (string, error) {
	if !interactive {
		var pw string
		if _, err := fmt.Fscanf(in, "%s", &pw); err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !isTerminal(f) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password (give one on stdin, or use --interactive=false)")
		}
		return pw, nil
	}
	first, err := askNoEcho(f, prompt, fmt.Sprintf("Password of %s: ", name))
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", errors.New("empty password")
	}
	again, err := askNoEcho(f, prompt, fmt.Sprintf("Type password of %s again for confirmation: ", name))
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("given passwords are different")
	}
	return first, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// askNoEcho prints prompt and reads a line from the terminal f with echo
// off, restoring the terminal after.
func askNoEcho(f *os.File, prompt io.Writer, question string) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("read password: turn echo off: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(prompt, question)
	line, err := bufio.NewReader(f).ReadString('\n')
	fmt.Fprintln(prompt)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
