package queue_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestEngine_ExtendDetachedAfterClockStepBack: a call in a pool a campaign
// governs, its lease extended after the clock stepped back 12 s (its end
// now 2 s before the instant of its dispatch), then its pool detached
// from the campaign mid-call (the call kept in the campaign). Its next
// extension read its own kept call, counted at its dispatch, after the
// lease's end, as another pool's claim that took the call for ended: the
// live call was lost (the runner would hang up on the contact). Found by
// the model (PostgreSQL, three stores).
func TestEngine_ExtendDetachedAfterClockStepBack(t *testing.T) {
	t.Parallel()
	extendDetachedAfterClockStepBack(t, setup(t))
}

func TestPostgres_ExtendDetachedAfterClockStepBack(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	b, _ := pgBundle(t, url)
	extendDetachedAfterClockStepBack(t, b)
}

func extendDetachedAfterClockStepBack(t *testing.T, b *testBundle) {
	cid, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel)
	p, contact := ps[0].UUID, uuid.New()
	b.addContacts(t, p, contact)
	l, err := b.eng.TryDequeue(b.ctx, p)
	require.NoError(t, err)

	b.clock.Advance(-12 * time.Second)
	require.NoError(t, b.eng.Extend(b.ctx, l, 10*time.Second))
	detached, err := b.eng.DetachPool(b.ctx, cid, p)
	require.NoError(t, err)
	require.True(t, detached)
	require.NoError(t, b.eng.Extend(b.ctx, l, 5*time.Second), "no other call of the contact was made: the call goes on")
	require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
}
