package queue_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_TurnKeptWhenAnotherCampaignIsForgotten: a campaign's turn
// moves after each claim, so that DequeueCampaign takes its pools in turn,
// even when the turn of ANOTHER campaign is forgotten while the claim is
// under way (here: a DequeueCampaign on a completed campaign, which
// forgets its turn each time it is called, as a dialer's idle workers may
// do all day). A forget of another campaign must not cost this one its
// move on every claim: its second pool would never be served while the
// first has items.
//
// The clock holds each DequeueCampaign of the running campaign just after
// its claim committed (as TestEngine_TurnForgottenWhileAClaimReturns
// does), while a DequeueCampaign of the completed campaign runs.
func TestEngine_TurnKeptWhenAnotherCampaignIsForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu      sync.Mutex
		armed   bool
		held    chan struct{}
		release chan struct{}
	)
	now := func() time.Time {
		mu.Lock()
		hold, h, r := armed, held, release
		mu.Unlock()
		if hold {
			buf := make([]byte, 1<<14)
			stack := string(buf[:runtime.Stack(buf, false)])
			if strings.Contains(stack, "queue.(*Engine).tryDequeue(") && strings.Contains(stack, "queue.(*Engine).DequeueCampaign(") &&
				!strings.Contains(stack, "groupcommit") {
				mu.Lock()
				armed = false
				mu.Unlock()
				close(h)
				<-r
			}
		}
		return time.Now()
	}
	eng := openEngine(t, openFileStore(t, ""), queue.Options{Now: now, PollInterval: time.Hour})
	var pools []uuid.UUID
	for _, name := range []string{"first", "second"} {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: name, Description: "d", Type: pool.Parallel})
		require.NoError(t, err)
		_, err = eng.Add(ctx, p.UUID, newItems(4)...)
		require.NoError(t, err)
		pools = append(pools, p.UUID)
	}
	running, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "running"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, running.UUID, pools...)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, running.UUID)
	require.NoError(t, err)
	done, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "done"})
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, done.UUID)
	require.NoError(t, err)
	_, err = eng.CompleteCampaign(ctx, done.UUID)
	require.NoError(t, err)

	served := map[uuid.UUID]int{}
	for range 4 {
		mu.Lock()
		armed, held, release = true, make(chan struct{}), make(chan struct{})
		h, r := held, release
		mu.Unlock()
		type result struct {
			l   *queue.Lease
			err error
		}
		got := make(chan result, 1)
		go func() {
			l, err := eng.DequeueCampaign(ctx, running.UUID)
			got <- result{l, err}
		}()
		<-h // the claim committed; its caller has not returned yet
		_, err := eng.DequeueCampaign(ctx, done.UUID)
		require.True(t, errors.Is(err, campaign.ErrWrongStatus), "%v", err)
		close(r)
		res := <-got
		require.NoError(t, res.err)
		served[res.l.PoolUUID]++
		require.NoError(t, eng.Complete(ctx, res.l, ""))
	}
	require.Equal(t, 2, served[pools[0]], "four claims of a campaign of two pools with items: two from each (served %v)", served)
	require.Equal(t, 2, served[pools[1]], "the second pool is starved: the campaign's turn never moves (served %v)", served)
}
