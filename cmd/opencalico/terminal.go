package main

import (
	"io"
	"os"
)

// isTerminal reports whether w is a character device (a terminal): commands print tables to
// people and JSON to programs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
