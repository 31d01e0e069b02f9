// Package campaign is the domain of what governs how pools are dialled:
// contact rules (the API's /rules: per-day and total call caps, a retry
// interval, a daily calling window in the contact's time zone, do-not-call
// and opt-out handling, escalation) and campaigns, which draw from attached
// pools under at most one rule. Like package pool it has no SQL, no
// goroutines and no clock: it validates, applies defaults and computes
// transitions; package queue persists them through a store.
//
// # Rules
//
// A [Rule] is created from [CreateRuleParams] and changed with
// [UpdateRuleParams] (partial). A call rule has the API's defaults (3 calls
// a day, 10 in all, 120 minutes between attempts, 09:00–18:00); a text rule
// is one-shot: both caps are forced to 1, and the retry interval, end time
// and escalation fields are cleared, whatever the payload said. Times of
// day are written "HH:MM" and read back "HH:MM:SS".
//
// # Campaigns
//
// A [Campaign] moves Draft → In Process ⇄ Paused → Completed → Archived
// ([Status.After]). A pool attached to campaigns is dialled only while one
// of them is In Process; one attached to none is dialled under its own
// settings. A pool has at most one governing campaign (In Process or
// Paused) at a time, so it has at most one rule, whose max_total_calls is
// then the ceiling of its items' attempts (it takes precedence over the
// pool's max_retries; counted per contact over the campaign's pools) and
// retry_interval_minutes their retry delay.
//
// # Windows and day caps
//
// [Window] is a rule's [start_time, end_time) in wall-clock time, and its
// arithmetic in a zone: [Window.Contains], [Window.NextAllowed] (a start a
// DST change skips is met at the change, a repeated one at its first
// occurrence), [Window.NextDayStart]. [Gate] joins a window, the
// max_calls_per_day cap and the contact's zone, and decides one item's
// attempt ([Gate.Admit]) or retry ([Gate.Retry]) from the item's count of
// its latest calling day ([LocalDay]), and those of the contact's items in
// the campaign's other pools ([Gate].Others): the caps are the contact's,
// not each item's. All of it is pure: the caller
// passes the time. [DNCEntry], [Escalation] and their queries are the
// records of the do-not-call list and of escalations.
package campaign
