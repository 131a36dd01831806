//go:build !unix

package store

import "sync"

// migrateMu stands in for a file lock where flock is unavailable: it serializes migrations
// within one process only.
var migrateMu sync.Mutex

func lockFile(string) (unlock func(), err error) {
	migrateMu.Lock()
	return migrateMu.Unlock, nil
}
