//go:build !linux

package control

func zombie(int) bool { return false }

func executable(int) (string, bool) { return "", false }
