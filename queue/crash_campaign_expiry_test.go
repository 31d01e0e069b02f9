package queue_test

// TestCrash_CampaignLeaseEndsThenPoolLeaves: a dialer killed with SIGKILL
// in a call under a campaign's rule leaves its lease to expire, as a failed
// attempt. The lease ends while the campaign still governs the pool, so
// the expiry is a failure under the rule: it reaches the rule's
// escalation_after_failed_attempts (one escalation) and its
// max_total_calls (the item is Failed). When the pool leaves the campaign
// (DetachPool) or the campaign stops governing it (CompleteCampaign)
// after the lease ended, but before any write on the pool applied the
// expiry, the expiry must still be judged by the rule that governed when
// the lease ended, as it is when any write on the pool (a claim, Remove,
// DeletePool, which applies expired leases first) comes in between.
//
// The child is this test binary re-executed with
// -test.run=^TestCrash_CampaignLeaseEndsThenPoolLeaves$ and
// POOLQ_CRASH_EXPIRY_CHILD set to the store: it claims under the campaign,
// says HOLDING and waits to be killed.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

const (
	crashExpiryEnvChild    = "POOLQ_CRASH_EXPIRY_CHILD"
	crashExpiryEnvWhere    = "POOLQ_CRASH_EXPIRY_WHERE"
	crashExpiryEnvCampaign = "POOLQ_CRASH_EXPIRY_CAMPAIGN"
)

func TestCrash_CampaignLeaseEndsThenPoolLeaves(t *testing.T) {
	if kind := os.Getenv(crashExpiryEnvChild); kind != "" {
		crashExpiryChild(t, kind)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	for _, s := range crashMixedStores {
		if s.full {
			continue
		}
		// ClaimThenDetachPool is the control: a claim applies the expiry
		// before the pool leaves.
		for _, leave := range []string{"DetachPool", "CompleteCampaign", "ClaimThenDetachPool"} {
			t.Run(s.name+"/"+leave, func(t *testing.T) {
				crashExpiryRun(t, s.name, s.postgres, leave)
			})
		}
	}
}

func crashExpiryRun(t *testing.T, kind string, onPostgres bool, leave string) {
	ctx := context.Background()
	where := filepath.Join(t.TempDir(), "crash.db")
	if onPostgres {
		where = pgtest.Schema(t, pgtest.URL(t))
	}
	st, eng := crashMixedOpen(t, kind, where, 0)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "governed pool", Description: "its dialer is killed",
		Type: pool.Parallel, MaxRetries: pqPtr(9)})
	require.NoError(t, err)
	contact := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact})
	require.NoError(t, err)
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "two calls", MaxTotalCalls: pqPtr(2),
		StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), EscalationAfterFailedAttempts: pqPtr(2)})
	require.NoError(t, err)
	k, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "killed campaign", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, k.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, k.UUID)
	require.NoError(t, err)
	// The first attempt fails here, due again at once.
	l, err := queue.TryDequeueCampaign(ctx, eng, k.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Fail(ctx, l, queue.Failure{Note: "busy", RetryAt: time.Now().Add(time.Millisecond)}))
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	time.Sleep(5 * time.Millisecond)

	// The second attempt: the child claims it and is killed in the call.
	var out crashOutput
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash_CampaignLeaseEndsThenPoolLeaves$", "-test.v")
	cmd.Env = append(os.Environ(), crashExpiryEnvChild+"="+kind, crashExpiryEnvWhere+"="+where,
		crashExpiryEnvCampaign+"="+k.UUID.String())
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	require.True(t, waitUntil(time.Minute, func() bool { return strings.Contains(out.String(), "HOLDING attempt 2") }),
		"the child never held the second attempt:\n%s", out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-exited

	// Later: the lease has ended, while the campaign governed the pool.
	st, eng = crashMixedOpen(t, kind, where, 2*crashLease)
	defer func() {
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
	}()
	switch leave {
	case "ClaimThenDetachPool":
		_, err = queue.TryDequeueCampaign(ctx, eng, k.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty)
		_, err = eng.DetachPool(ctx, k.UUID, p.UUID)
	case "DetachPool":
		_, err = eng.DetachPool(ctx, k.UUID, p.UUID) // no call under way: the lease has ended
	case "CompleteCampaign":
		_, err = eng.CompleteCampaign(ctx, k.UUID)
	}
	require.NoError(t, err, leave)
	// Any write on the pool now applies the expiry (the pool is held
	// after CompleteCampaign: the claim says so, after applying it).
	_, err = eng.TryDequeue(ctx, p.UUID)
	if leave == "CompleteCampaign" {
		require.ErrorIs(t, err, queue.ErrHeld)
	}

	esc, err := eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	items := allItems(ctx, t, eng, p.UUID, 100)
	require.Len(t, items, 1)
	it := items[0]
	require.Len(t, esc, 1, "the killed second attempt's lease ended under the rule (escalation after 2 failed attempts); "+
		"%s before its expiry was applied: no escalation recorded. The item: %s, %d attempts, note %q", leave, it.Status, it.Attempts, it.Notes)
	require.Equal(t, pool.StatusFailed, it.Status, "the killed second attempt's lease ended under the rule (max_total_calls 2); "+
		"%s before its expiry was applied: the item is %s with %d attempts (note %q), under the pool's max_retries", leave, it.Status, it.Attempts, it.Notes)
}

// crashExpiryChild claims under the campaign and waits to be killed.
func crashExpiryChild(t *testing.T, kind string) {
	ctx := context.Background()
	_, eng := crashMixedOpen(t, kind, os.Getenv(crashExpiryEnvWhere), 0)
	k := uuid.MustParse(os.Getenv(crashExpiryEnvCampaign))
	l, err := queue.TryDequeueCampaign(ctx, eng, k)
	require.NoError(t, err)
	fmt.Printf("HOLDING attempt %d\n", l.Attempt)
	time.Sleep(5 * time.Minute)
}
