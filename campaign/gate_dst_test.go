package campaign_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestGate_WindowAndCapAcrossDSTAndZones drives a Gate through calls near
// the changes of offset of 2026 (New York's and London's spring-forward
// and fall-back, Auckland's, Lord Howe's 30-minute one) with a random
// window, and moves the contact's zone between calls now and then. Every
// call it admits starts inside the window and on a local date with fewer
// than PerDay calls (the calls made and not given back, each read in the
// zone of the moment: the contact's current zone), and a refusal's
// instant (Earliest) is one Admit lets through. (TestGate_NeverTooFewAcrossZones
// has the whole day as its window and lies mostly away from the changes.)
func TestGate_WindowAndCapAcrossDSTAndZones(t *testing.T) {
	t.Parallel()
	zones := []string{"America/New_York", "Europe/London", "Pacific/Auckland", "Australia/Lord_Howe",
		"Asia/Tokyo", "America/Los_Angeles", "Pacific/Chatham", "Pacific/Kiritimati"}
	edges := []string{
		"2026-03-08T07:00:00Z", // New York: 02:00 EST → 03:00 EDT
		"2026-11-01T06:00:00Z", // New York: 02:00 EDT → 01:00 EST, 01:xx twice
		"2026-03-29T01:00:00Z", // London: 01:00 GMT → 02:00 BST
		"2026-10-25T01:00:00Z", // London: 02:00 BST → 01:00 GMT
		"2026-04-04T14:00:00Z", // Auckland: 03:00 NZDT → 02:00 NZST
		"2026-09-26T14:00:00Z", // Auckland: 02:00 NZST → 03:00 NZDT
		"2026-04-04T15:00:00Z", // Lord Howe: 02:00 → 01:30
	}
	rapid.Check(t, func(t *rapid.T) {
		start := rapid.IntRange(0, campaign.MinutesPerDay-2).Draw(t, "start")
		end := rapid.IntRange(start+1, campaign.MinutesPerDay).Draw(t, "end")
		g := campaign.Gate{Window: campaign.Window{Start: campaign.Clock(start), End: campaign.Clock(end)},
			PerDay: rapid.IntRange(1, 3).Draw(t, "per day"), Loc: zone(t, rapid.SampledFrom(zones).Draw(t, "zone"))}
		now := utc(t, rapid.SampledFrom(edges).Draw(t, "edge")).
			Add(-time.Duration(rapid.IntRange(0, 36*60).Draw(t, "minutes before the edge")) * time.Minute)
		var it pool.Item
		var calls []time.Time // made and not given back
		for step := range rapid.IntRange(1, 30).Draw(t, "steps") {
			now = now.Add(time.Duration(rapid.IntRange(0, 5*60).Draw(t, fmt.Sprintf("minutes %d", step))) * time.Minute)
			if rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("move %d", step)) == 0 {
				g.Loc = zone(t, rapid.SampledFrom(zones).Draw(t, fmt.Sprintf("zone %d", step)))
			}
			out, at, ok := g.Admit(it, now)
			if !ok {
				require.True(t, at.After(now), "refused at %v, earliest %v", now, at)
				_, _, ok := g.Admit(it, at)
				require.True(t, ok, "refused at %v (%v in %s): Earliest %v (%v) is refused too", now, now.In(g.Loc), g.Loc, at, at.In(g.Loc))
				continue
			}
			require.True(t, g.Window.Contains(now, g.Loc), "admitted at %v, %v in %s, outside %v", now, now.In(g.Loc), g.Loc, g.Window)
			day := campaign.LocalDay(now, g.Loc)
			n := 0
			for _, c := range calls {
				if campaign.LocalDay(c, g.Loc) == day {
					n++
				}
			}
			require.Less(t, n, g.PerDay, "admitted at %v (%v in %s): %d calls on that date already", now, now.In(g.Loc), g.Loc, n)
			it = out
			calls = append(calls, now)
			if rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("give back %d", step)) == 0 {
				it.CallsToday-- // pool.Item.Released: the latest call, the latest day's
				calls = calls[:len(calls)-1]
			}
		}
	})
}
