package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

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
func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	return loggerFor(cmd.ErrOrStderr(), format)
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
