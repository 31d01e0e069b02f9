package pool

import "math/rand/v2"

// TokenSpread bounds the random part of a fencing token's step: each
// dispatch adds 1 + n to an item's token, n drawn uniformly from
// [0, TokenSpread). An item's token grows by at most TokenSpread a
// dispatch, so it stays below 2^63 for 2^32 - 1 dispatches at least.
const TokenSpread = 1 << 31

// nextToken returns the fencing token of the dispatch of an item whose
// token is token: token + 1 + n, n drawn uniformly from [0, TokenSpread).
// It is the package's only source of randomness.
//
// The step is random, not 1, because a dispatch's commit can be lost
// (SQLite's synchronous=NORMAL on power loss, PostgreSQL's
// synchronous_commit=off on a server crash) while its lease lives on in a
// process that survived: the item's token is back at token, and with a
// step of 1 the next dispatch would hand out the lost lease's token again,
// letting its holder settle an attempt that is not its own. With a random
// step, a later dispatch of the item reuses the lost token with a
// probability below 2^-30.
//
// The draw is math/rand/v2's: seeded by the runtime from the system's
// entropy in every process, a few nanoseconds a dispatch, and never
// failing. Nothing depends on the token being secret (a lease is given
// only to its holder); only on a lost one not coming back.
func nextToken(token int64) int64 {
	return token + 1 + rand.Int64N(TokenSpread)
}
