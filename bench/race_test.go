//go:build race

package bench

// raceEnabled: the race detector changes how much the runtime allocates
// (sync.Pool drops what it holds at random), so allocation budgets do not
// apply under it.
const raceEnabled = true
