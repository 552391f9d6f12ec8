// Package atomicfile replaces a file so that a reader never sees it
// missing, empty or half written: the library's pid and status files, and
// the pid file of restartbench's benchserver.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the file at path with data, mode 0644, by renaming a new
// file in the same directory over it. A reader sees the old content or the
// new one. A symbolic link at path is replaced, never followed. On error
// the file at path is left as it was, and no temporary file is left.
func Write(path string, data []byte) error {
	dir, base := filepath.Split(path)
	tmp, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
