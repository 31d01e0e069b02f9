//go:build linux || freebsd

package pgtest

import "syscall"

// sysProcAttr runs a program as user (nil: this process's) and has the
// kernel send it deathsig when the thread that started it ends (Linux),
// or this process (FreeBSD): a test killed before its cleanups leaves no
// server running.
func sysProcAttr(user *osUser, deathsig syscall.Signal) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: deathsig}
	if user != nil {
		a.Credential = &syscall.Credential{Uid: user.uid, Gid: user.gid}
	}
	return a
}

// unixSystem says whether a Cluster or a Bouncer can run here: they
// need a Unix system (users, signals, PostgreSQL's Unix programs).
const unixSystem = true
