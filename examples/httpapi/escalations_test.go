package main

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// escalationRule escalates after two failed attempts, of three.
var escalationRule = map[string]any{
	"name": "Escalates", "max_total_calls": 3, "retry_interval_minutes": 60,
	"escalation_after_failed_attempts": 2, "escalation_type": "callback", "escalation_target": "supervisors",
}

// failEach claims and fails every due item of a FIFO pool, n of them.
func (b *testBundle) failEach(poolID uuid.UUID, n int) {
	b.t.Helper()
	for range n {
		l := b.claim(poolID)
		res := b.settle(l, "fail", map[string]any{"token": l.Token, "note": "no answer"})
		require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
	}
}

// escalations lists escalations through the API with the query q.
func (b *testBundle) escalations(q string) escalationList {
	b.t.Helper()
	res := b.do("GET", "/api/v1/escalations"+q, nil)
	require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Equal(b.t, "Escalations retrieved successfully", res.Env.Message)
	return data[escalationList](b.t, res)
}

func TestEscalations(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p, cs := b.governedPool("Renewals", 2, escalationRule)
		other, _ := b.governedPool("Other", 0, map[string]any{"name": "Other rule"})

		b.failEach(p.UUID, 2) // one failed attempt each: nothing yet
		empty := b.escalations("")
		require.Equal(t, escalationList{Data: []campaign.Escalation{}, After: 0, Limit: 100, NextAfter: 0}, empty)
		b.clock.Advance(time.Hour)
		b.failEach(p.UUID, 2) // the second: each escalates
		at := b.clock.Now()

		all := b.escalations("")
		require.Len(t, all.Data, 2)
		require.Equal(t, all.Data[1].ID, all.NextAfter)
		for i, e := range all.Data {
			require.Equal(t, cs[i], e.ContactUUID, "in the order they were recorded")
			require.Equal(t, p.UUID, e.PoolUUID)
			require.Equal(t, "callback", e.Type)
			require.Equal(t, "supervisors", e.Target)
			require.Equal(t, 2, e.FailedAttempts)
			require.Equal(t, at, e.At)
			require.Equal(t, b.item(p.UUID, cs[i]).ID, e.ItemID)
		}
		require.Less(t, all.Data[0].ID, all.Data[1].ID)
		m := dataMap(t, b.do("GET", "/api/v1/escalations", nil))["data"].([]any)[0].(map[string]any)
		require.Equal(t, at.Format("2006-01-02T15:04:05Z"), m["escalated_at"])
		require.Contains(t, m, "campaign_uuid")
		require.Contains(t, m, "rule_uuid")

		// A consumer pages with the cursor, and polls with the last one.
		first := b.escalations("?limit=1")
		require.Equal(t, all.Data[:1], first.Data)
		require.Equal(t, 1, first.Limit)
		second := b.escalations("?limit=1&after=" + strconv.FormatInt(first.NextAfter, 10))
		require.Equal(t, all.Data[1:], second.Data)
		caughtUp := b.escalations("?limit=1&after=" + strconv.FormatInt(second.NextAfter, 10))
		require.Empty(t, caughtUp.Data)
		require.Equal(t, second.NextAfter, caughtUp.NextAfter, "the cursor stays where it was")

		// One pool's.
		require.Equal(t, all.Data, b.escalations("?pool_uuid="+p.UUID.String()).Data)
		require.Empty(t, b.escalations("?pool_uuid="+other.UUID.String()).Data)
		require.Empty(t, b.escalations("?pool_uuid="+uuid.NewString()).Data, "an unknown pool keeps nothing")

		// The third failure fails the item for good, and does not escalate
		// again.
		b.clock.Advance(time.Hour)
		b.failEach(p.UUID, 2)
		require.Equal(t, pool.StatusFailed, b.item(p.UUID, cs[0]).Status)
		require.Len(t, b.escalations("").Data, 2)

		// They outlive their pool.
		res := b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, all.Data, b.escalations("?pool_uuid="+p.UUID.String()).Data)
	})

	t.Run("ErrValidation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.unchanged(func() {
			for q, field := range map[string]string{
				"?after=-1":    "after",
				"?after=x":     "after",
				"?after=1.5":   "after",
				"?limit=0":     "limit",
				"?limit=101":   "limit",
				"?limit=ten":   "limit",
				"?pool_uuid=x": "pool_uuid",
			} {
				requireInvalid(t, b.do("GET", "/api/v1/escalations"+q, nil), field)
			}
			res := b.do("GET", "/api/v1/escalations?after=x&limit=500&pool_uuid="+uuid.Nil.String(), nil)
			requireInvalid(t, res, "after", "limit", "pool_uuid")
			require.Contains(t, res.Env.Error.Details, "pool_uuid: must not be the nil UUID")
			requireError(t, b.do("POST", "/api/v1/escalations", `{}`), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
		})
	})
}
