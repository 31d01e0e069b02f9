//go:build unix && !linux && !freebsd

package pgtest

import "syscall"

// sysProcAttr runs a program as user (nil: this process's). deathsig is
// not sent: this system has no parent-death signal (macOS, NetBSD,
// OpenBSD, …), and a test killed before its cleanups leaves its private
// servers running.
func sysProcAttr(user *osUser, deathsig syscall.Signal) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if user != nil {
		a.Credential = &syscall.Credential{Uid: user.uid, Gid: user.gid}
	}
	return a
}

// unixSystem says whether a Cluster or a Bouncer can run here: they
// need a Unix system (users, signals, PostgreSQL's Unix programs).
const unixSystem = true
