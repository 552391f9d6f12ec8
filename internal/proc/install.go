package proc

import (
	"os"
	"path/filepath"
)

// Install puts the program bin at path as a deploy does: by a rename over
// path, so that path names the old program or the new one at every moment,
// never a file half written. It hard-links bin rather than copying it (the
// two must be on one file system): a file this process has just written
// could still be open in a child that another goroutine is forking, and
// exec of it would fail with ETXTBSY.
func Install(bin, path string) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := os.Link(bin, tmp); err != nil {
		return err
	}
	err := os.Rename(tmp, path)
	// Renaming a link over another link to the same file does nothing and
	// leaves tmp behind: writing to tmp later would write into bin.
	os.Remove(tmp)
	return err
}

// InstallScript puts a shell script (or any text a #! line makes a
// program) at path with [Install]: a program that fails, hangs or tells
// what it was given, for a test to restart onto. It is written to a file
// of its own in path's directory first.
func InstallScript(script, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "script-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // path keeps the file
	_, err = f.WriteString(script)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o755)
	}
	if err == nil {
		err = Install(f.Name(), path)
	}
	return err
}
