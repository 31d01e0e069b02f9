package pool

import (
	"crypto/rand"
	"encoding/binary"
)

// TokenSpread bounds the random part of a fencing token's step: each
// dispatch adds 1 + n to an item's token, n drawn uniformly from
// [0, TokenSpread). An item's token grows by at most TokenSpread a
// dispatch, so it stays below 2^63 for at least 2^32 dispatches.
const TokenSpread = 1 << 31

// nextToken returns the fencing token of the dispatch of an item whose
// token is token: token + 1 + n, n drawn uniformly from [0, TokenSpread)
// by crypto/rand. It is the package's only source of randomness.
//
// The step is random, not 1, because a dispatch's commit can be lost
// (SQLite's synchronous=NORMAL on power loss, PostgreSQL's
// synchronous_commit=off on a server crash) while its lease lives on in a
// process that survived: the item's token is back at token, and with a
// step of 1 the next dispatch would hand out the lost lease's token again,
// letting its holder settle an attempt that is not its own. With a random
// step, a later dispatch of the item reuses the lost token with a
// probability below 2^-30.
func nextToken(token int64) int64 {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand.Read crashes the program rather than return an error
	return token + 1 + int64(binary.LittleEndian.Uint32(b[:])%TokenSpread)
}
