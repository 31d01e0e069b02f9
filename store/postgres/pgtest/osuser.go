package pgtest

// osUser is the OS user a server program runs as, when not this
// process's: the programs of PostgreSQL and PgBouncer refuse to run as
// root. Running a program as another user needs a Unix system (see
// sysProcAttr, one per system).
type osUser struct{ uid, gid uint32 }
