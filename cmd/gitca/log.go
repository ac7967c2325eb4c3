package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Log formats of --log-format.
const (
	logText = "text"
	logJSON = "json"
)

// newLogger is the structured logger of a command, on its stderr, in the
// format --log-format asks for.
// Its lines are scrubbed of known (and recognisable) secrets.
func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	l, err := loggerFor(cmd.ErrOrStderr(), format)
	if err != nil {
		return nil, err
	}
	return slog.New(scrubHandler{l.Handler(), knownSecrets(cmd)}), nil
}

func loggerFor(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case logText, "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case logJSON:
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not supported (allowed: text, json)", format)
}

// progressLine returns a progress callback that redraws one line on w while
// signing and sealing, or nil when w is not a terminal: logs and CI output
// get no carriage returns.
func progressLine(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressWriter(w)
}

// progressWriter draws "signing and sealing: done/total" in place, and ends
// the line when the last object is done.
func progressWriter(w io.Writer) func(done, total int) {
	var mu sync.Mutex
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "\rsigning and sealing: %d/%d", done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

// scrubHandler scrubs every message and attribute of a log record
// (secrets.Scrub): a failed run's error is logged, and the loop goes on.
type scrubHandler struct {
	slog.Handler
	known []string
}

func (h scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, secrets.ScrubString(r.Message, h.known...), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, secrets.ScrubString(v.String(), h.known...))
	case slog.KindGroup:
		var as []any
		for _, g := range v.Group() {
			as = append(as, h.attr(g))
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		return slog.String(a.Key, secrets.ScrubString(fmt.Sprint(v.Any()), h.known...))
	}
	return a
}

func (h scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return scrubHandler{h.Handler.WithAttrs(out), h.known}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{h.Handler.WithGroup(name), h.known}
}
