//go:build !unix

package pgtest

import "syscall"

// sysProcAttr: on this system (Windows, …) a Cluster and a Bouncer skip
// their test (see supported) before they start a program; a program runs
// as this process's user, and deathsig is not sent.
func sysProcAttr(_ *osUser, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

// unixSystem says whether a Cluster or a Bouncer can run here: they
// need a Unix system (users, signals, PostgreSQL's Unix programs).
const unixSystem = false
