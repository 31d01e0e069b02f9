//go:build race

package postgres_test

// underRace: the race detector makes every round trip slower, enough
// for a statement to pass the store's lock wait slack with no wait.
const underRace = true
