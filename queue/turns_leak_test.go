package queue_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_TurnForgottenWhileAClaimReturns: a DequeueCampaign whose
// claim committed just before its campaign was completed on the same
// engine must not leave the campaign's turn behind once the completion has
// forgotten it. The turns are kept for the campaigns that may dispatch,
// not for every one that ever did: an entry left here stays for the life of
// the engine (nothing reads the campaign again), one per campaign so
// completed, on a dialer that runs for weeks.
//
// The clock holds the DequeueCampaign's goroutine just after its claim
// committed (the claim's check of its own lateness, in tryDequeue, on the
// caller's goroutine), while CompleteCampaign runs to its end.
func TestEngine_TurnForgottenWhileAClaimReturns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu      sync.Mutex
		armed   bool
		held    = make(chan struct{})
		release = make(chan struct{})
	)
	now := func() time.Time {
		mu.Lock()
		hold := armed
		mu.Unlock()
		if hold {
			buf := make([]byte, 1<<14)
			stack := string(buf[:runtime.Stack(buf, false)])
			if strings.Contains(stack, "queue.(*Engine).tryDequeue(") && strings.Contains(stack, "queue.(*Engine).DequeueCampaign(") &&
				!strings.Contains(stack, "groupcommit") {
				mu.Lock()
				armed = false
				mu.Unlock()
				close(held)
				<-release
			}
		}
		return time.Now()
	}
	eng := openEngine(t, openFileStore(t, ""), queue.Options{Now: now, PollInterval: time.Hour})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "turns", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "turns"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	mu.Lock()
	armed = true
	mu.Unlock()
	got := make(chan error, 1)
	go func() {
		l, err := eng.DequeueCampaign(ctx, c.UUID)
		if err == nil {
			err = eng.Complete(ctx, l, "")
		}
		got <- err
	}()
	<-held // the claim committed; its caller has not returned yet
	_, err = eng.CompleteCampaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Zero(t, queue.Turns(eng), "the completion forgets the campaign's turn")
	close(release)
	require.NoError(t, <-got)
	require.Zero(t, queue.Turns(eng), "a turn is kept for a campaign that was completed: it is never forgotten")
}
