package pool_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// Generators.

var (
	blankRune = rapid.RuneFrom([]rune(" \t\n\r\v\f\u0085\u00a0\u2003\u3000"))
	// textRune mixes ASCII, multi-byte scripts, 4-byte emoji and any rune
	// but NUL (which names and descriptions may not contain).
	textRune = rapid.OneOf(
		rapid.RuneFrom([]rune("abcdefghijklmnopqrstuvwxyzABCXYZ0129 -_.,()")),
		rapid.RuneFrom(nil, unicode.Han, unicode.Cyrillic, unicode.Hiragana, unicode.Arabic),
		rapid.RuneFrom([]rune("🚀😀🔥⭐👍é")),
		blankRune,
		rapid.Rune().Filter(func(r rune) bool { return r != 0 }),
	)
	nonBlankRune = textRune.Filter(func(r rune) bool { return !unicode.IsSpace(r) })

	// Names are trimmed of surrounding white space before they are counted,
	// and hold no control character inside.
	genValidName = rapid.StringOfN(textRune, pool.MinNameLen, pool.MaxNameLen, -1).
			Filter(func(s string) bool {
			n := utf8.RuneCountInString(strings.TrimSpace(s))
			return n >= pool.MinNameLen && n <= pool.MaxNameLen && !strings.ContainsFunc(strings.TrimSpace(s), breaksLine)
		})
	genValidDescription = rapid.StringOfN(textRune, 1, 80, -1).
				Filter(func(s string) bool { return strings.TrimSpace(s) != "" })

	// genTypeSpelling spells a valid type in a random case.
	genTypeSpelling = rapid.Custom(func(t *rapid.T) pool.Type {
		typ := rapid.SampledFrom(pool.Types()).Draw(t, "type")
		upper := rapid.SliceOfN(rapid.Bool(), len(typ), len(typ)).Draw(t, "upper")
		var b strings.Builder
		for i, r := range string(typ) {
			if upper[i] {
				b.WriteRune(unicode.ToUpper(r))
			} else {
				b.WriteRune(unicode.ToLower(r))
			}
		}
		return pool.Type(b.String())
	})
	genValidType = rapid.OneOf(rapid.Just(pool.Type("")), genTypeSpelling)

	genValidCreate = rapid.Custom(func(t *rapid.T) pool.CreateParams {
		return pool.CreateParams{
			Name:             genValidName.Draw(t, "name"),
			Description:      genValidDescription.Draw(t, "description"),
			Type:             genValidType.Draw(t, "type"),
			MaxParallelItems: rapid.Ptr(rapid.IntRange(pool.MinParallelItems, pool.MaxParallelItems), true).Draw(t, "max_parallel_items"),
			MaxRetries:       rapid.Ptr(rapid.IntRange(0, math.MaxInt), true).Draw(t, "max_retries"),
			IsActive:         rapid.Ptr(rapid.Bool(), true).Draw(t, "is_active"),
		}
	})

	genInvalidName = rapid.OneOf(
		rapid.Just(""),
		rapid.StringOfN(blankRune, 1, 300, -1),                                                         // required
		rapid.StringOfN(nonBlankRune, 1, pool.MinNameLen-1, -1),                                        // length: too short
		rapid.StringOfN(nonBlankRune, pool.MaxNameLen+1, pool.MaxNameLen+40, -1),                       // length: too long
		rapid.Map(genValidName, func(s string) string { return s[:len(s)/2] + "\xff" + s[len(s)/2:] }), // format
	)
	genInvalidDescription = rapid.StringOfN(blankRune, 0, 10, -1)
	genInvalidType        = rapid.OneOf(
		rapid.SampledFrom([]pool.Type{"FIFO ", " lifo", "Paralel", "FIFOx", "Random", "\x00FIFO", "ЛИФО", " "}),
		rapid.Map(rapid.String(), func(s string) pool.Type { return pool.Type(s) }).
			Filter(func(typ pool.Type) bool { _, ok := pool.ParseType(string(typ)); return typ != "" && !ok }),
	)
	genInvalidMaxParallel = rapid.OneOf(rapid.IntMax(pool.MinParallelItems-1), rapid.IntMin(pool.MaxParallelItems+1))
	genInvalidMaxRetries  = rapid.IntMax(-1)

	genUUID = rapid.Custom(func(t *rapid.T) uuid.UUID {
		b := rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "uuid")
		id, _ := uuid.FromBytes(b)
		return id
	})
	genNow = rapid.Custom(func(t *rapid.T) time.Time {
		sec := rapid.Int64Range(0, 4_000_000_000).Draw(t, "unix")
		off := rapid.IntRange(-12, 14).Draw(t, "zone") * 3600
		return time.Unix(sec, rapid.Int64Range(0, 999_999_999).Draw(t, "nanos")).In(time.FixedZone("", off))
	})
)

// poolFields are the fields a create or update can get wrong, in rule order.
var poolFields = []string{"name", "description", "type", "max_parallel_items", "max_retries"}

// rulesOf lists the rules each field may fail.
var rulesOf = map[string][]string{
	"name":               {validate.RuleRequired, validate.RuleLength, validate.RuleFormat},
	"description":        {validate.RuleRequired},
	"type":               {validate.RuleEnum},
	"max_parallel_items": {validate.RuleRange},
	"max_retries":        {validate.RuleRange},
}

// (a) Any valid CreateParams make a pool with exactly the given values or
// the defaults.
func TestNew_PropertyValidParams(t *testing.T) {
	t.Parallel()

	rapid.Check(t, func(t *rapid.T) {
		p := genValidCreate.Draw(t, "params")
		id := genUUID.Draw(t, "id")
		now := genNow.Draw(t, "now")

		require.NoError(t, p.Validate())
		got, err := pool.New(id, p, now)
		require.NoError(t, err)

		want := pool.Pool{
			UUID: id, Name: strings.TrimSpace(p.Name), Description: strings.TrimSpace(p.Description),
			Type: pool.FIFO, MaxParallelItems: 10, MaxRetries: 3, IsActive: true,
			CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
		}
		if p.Type != "" {
			want.Type, _ = pool.ParseType(string(p.Type))
			require.True(t, strings.EqualFold(string(p.Type), string(want.Type)))
		}
		if p.MaxParallelItems != nil {
			want.MaxParallelItems = *p.MaxParallelItems
		}
		if p.MaxRetries != nil {
			want.MaxRetries = *p.MaxRetries
		}
		if p.IsActive != nil {
			want.IsActive = *p.IsActive
		}
		require.Equal(t, want, got)
		require.True(t, got.Type.Valid())
		require.Equal(t, time.UTC, got.CreatedAt.Location())
	})
}

// (b) Params with a chosen set of fields made invalid fail with exactly that
// set of fields, each with one of its rules; the same holds for an update.
func TestNew_PropertyInvalidFields(t *testing.T) {
	t.Parallel()

	rapid.Check(t, func(t *rapid.T) {
		bad := make(map[string]bool, len(poolFields))
		var want []string
		for _, f := range poolFields {
			if rapid.Bool().Draw(t, "bad "+f) {
				bad[f] = true
				want = append(want, f)
			}
		}

		p := genValidCreate.Draw(t, "valid")
		if bad["name"] {
			p.Name = genInvalidName.Draw(t, "name")
		}
		if bad["description"] {
			p.Description = genInvalidDescription.Draw(t, "description")
		}
		if bad["type"] {
			p.Type = genInvalidType.Draw(t, "type")
		}
		if bad["max_parallel_items"] {
			p.MaxParallelItems = ptr(genInvalidMaxParallel.Draw(t, "max_parallel_items"))
		}
		if bad["max_retries"] {
			p.MaxRetries = ptr(genInvalidMaxRetries.Draw(t, "max_retries"))
		}

		got, err := pool.New(genUUID.Draw(t, "id"), p, t0)
		if len(want) == 0 {
			require.NoError(t, err)
			return
		}
		require.Equal(t, pool.Pool{}, got)
		require.ErrorIs(t, err, validate.ErrInvalid)
		requireExactFields(t, err, want)
		require.Equal(t, err, p.Validate(), "New reports what Validate reports")

		// The same values in an update, every other field given or not.
		var u pool.UpdateParams
		if bad["name"] || rapid.Bool().Draw(t, "update name") {
			u.Name = ptr(p.Name)
		}
		if bad["description"] || rapid.Bool().Draw(t, "update description") {
			u.Description = ptr(p.Description)
		}
		if bad["type"] {
			u.Type = ptr(p.Type)
		} else if rapid.Bool().Draw(t, "update type") {
			u.Type = ptr(genTypeSpelling.Draw(t, "valid type"))
		}
		u.MaxParallelItems = p.MaxParallelItems
		u.MaxRetries = p.MaxRetries
		u.IsActive = p.IsActive
		base := defaultPool()
		out, changed, err := u.Apply(base)
		require.ErrorIs(t, err, validate.ErrInvalid)
		requireExactFields(t, err, want)
		require.False(t, changed)
		require.Equal(t, base, out)
	})
}

// requireExactFields checks that err fails exactly the fields of want (as a
// set), once each, with one of each field's rules.
func requireExactFields(t require.TestingT, err error, want []string) {
	var es validate.Errors
	require.True(t, errors.As(err, &es))
	require.ElementsMatch(t, want, es.Fields())
	require.Len(t, es, len(want), "one failure per field: %v", es)
	for _, e := range es {
		require.Contains(t, rulesOf[e.Field], e.Rule, "field %s", e.Field)
	}
}

// (c) A random walk of the state machine on one item, checked against a
// model after every step.
func TestMachine_PropertyRandomWalk(t *testing.T) {
	t.Parallel()

	rapid.Check(t, func(t *rapid.T) {
		p := poolWithRetries(rapid.IntRange(0, 4).Draw(t, "max_retries"))
		ceilingChanges := rapid.Bool().Draw(t, "ceiling_changes")
		maxCeiling := p.Ceiling()
		clock := t0
		it := pool.NewItem{ContactUUID: contactA, Priority: 1}.Item(poolID, clock)
		first := it

		// The model: what attempts and retry_count must be.
		attempts, retries := 0, 0
		token := it.Token

		// set moves the item to out after action; a terminal item may only
		// leave its status through Requeue.
		set := func(action string, out pool.Item) {
			if it.Status.Terminal() && out.Status != it.Status {
				require.Equal(t, "requeue", action, "%s left terminal %s for %s", action, it.Status, out.Status)
			}
			it = out
		}
		// refused checks an operation that must not apply.
		refused := func(out pool.Item, err, want error) {
			require.ErrorIs(t, err, want)
			require.Equal(t, it, out, "a refused operation changes nothing")
		}
		duration := func(label string) time.Duration {
			return time.Duration(rapid.IntRange(0, 180).Draw(t, label)) * time.Minute
		}

		actions := map[string]func(*rapid.T){
			"tick": func(t *rapid.T) { clock = clock.Add(duration("tick")) },
			"dispatch": func(t *rapid.T) {
				if !it.Due(clock) {
					t.Skip("not due")
				}
				out, ok := it.Dispatched(p.Ceiling(), clock, clock.Add(10*time.Minute))
				if ok {
					require.Less(t, it.Attempts, p.Ceiling())
					require.Equal(t, pool.StatusProcessing, out.Status)
					attempts++
					require.Greater(t, out.Token, token, "a dispatch draws a larger token")
					require.LessOrEqual(t, out.Token-token, int64(pool.TokenSpread), "by at most TokenSpread")
					token = out.Token
					require.LessOrEqual(t, out.Attempts, p.Ceiling(), "a dispatch never goes beyond the current ceiling")
				} else {
					require.GreaterOrEqual(t, it.Attempts, p.Ceiling())
					require.Equal(t, pool.StatusFailed, out.Status)
					require.Equal(t, pool.NoteCeiling, out.Notes)
				}
				set("dispatch", out)
			},
			"markInCall": func(t *rapid.T) {
				out, err := it.InCall()
				if !it.Status.InFlight() {
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				require.Equal(t, pool.StatusInCall, out.Status)
				set("markInCall", out)
			},
			"extend": func(t *rapid.T) {
				out, err := it.Extended(clock.Add(time.Minute + duration("extend")))
				if !it.Status.InFlight() {
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				require.Equal(t, it.Status, out.Status)
				set("extend", out)
			},
			"complete": func(t *rapid.T) {
				out, err := it.Completed(clock, "answered")
				if !it.Status.InFlight() {
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				require.Equal(t, pool.StatusCompleted, out.Status)
				set("complete", out)
			},
			"fail": func(t *rapid.T) {
				f := pool.Failure{Final: rapid.Bool().Draw(t, "final"), Note: "busy"}
				if rapid.Bool().Draw(t, "retry_at") {
					f.RetryAt = clock.Add(duration("retry_in"))
				}
				out, err := it.Failed(p.Ceiling(), clock, f, retryDelay)
				if !it.Status.InFlight() {
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				switch {
				case f.Final || it.Attempts >= p.Ceiling():
					require.Equal(t, pool.StatusFailed, out.Status)
				case !f.RetryAt.IsZero():
					retries++
					require.Equal(t, pool.StatusScheduled, out.Status)
					require.True(t, out.NextRetryAt.Equal(f.RetryAt))
				default:
					retries++
					require.Equal(t, pool.StatusRetrying, out.Status)
					require.True(t, out.NextRetryAt.Equal(clock.Add(retryDelay)))
				}
				set("fail", out)
			},
			"expire": func(t *rapid.T) {
				out, err := it.Expired(p.Ceiling(), clock, retryDelay)
				if !it.Status.InFlight() {
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				if it.Attempts >= p.Ceiling() {
					require.Equal(t, pool.StatusFailed, out.Status)
				} else {
					retries++
					require.Equal(t, pool.StatusRetrying, out.Status)
				}
				set("expire", out)
			},
			"release": func(t *rapid.T) {
				out, err := it.Released(clock)
				if it.Status != pool.StatusProcessing { // In_Call: the call connected
					refused(out, err, pool.ErrWrongStatus)
					return
				}
				require.NoError(t, err)
				attempts--
				if retries == 0 {
					require.Equal(t, pool.StatusPending, out.Status)
				} else {
					require.Equal(t, pool.StatusRetrying, out.Status)
				}
				require.True(t, out.Due(clock), "a released item is due at once")
				set("release", out)
			},
			"skip": func(t *rapid.T) {
				out, err := it.Skipped("withdrawn")
				switch {
				case it.Status.InFlight():
					refused(out, err, pool.ErrInFlight)
				case it.Status.Terminal():
					refused(out, err, pool.ErrWrongStatus)
				default:
					require.NoError(t, err)
					require.Equal(t, pool.StatusSkipped, out.Status)
					set("skip", out)
				}
			},
			"requeue": func(t *rapid.T) {
				out, err := it.Requeued()
				switch {
				case it.Status.InFlight():
					refused(out, err, pool.ErrInFlight)
				case it.Status.Waiting():
					refused(out, err, pool.ErrWrongStatus)
				default:
					require.NoError(t, err)
					require.Equal(t, pool.StatusPending, out.Status)
					attempts, retries = 0, 0
					set("requeue", out)
				}
			},
			"setPriority": func(t *rapid.T) {
				prio := rapid.IntRange(-10, 10).Draw(t, "priority")
				out, err := it.WithPriority(prio)
				if it.Status.InFlight() {
					refused(out, err, pool.ErrInFlight)
					return
				}
				require.NoError(t, err)
				require.Equal(t, prio, out.Priority)
				set("setPriority", out)
			},
			"setMaxRetries": func(t *rapid.T) {
				if !ceilingChanges {
					t.Skip("fixed ceiling")
				}
				p.MaxRetries = rapid.IntRange(0, 4).Draw(t, "new max_retries")
				maxCeiling = max(maxCeiling, p.Ceiling())
			},
			"": func(t *rapid.T) {
				require.True(t, it.Status.Valid(), "status %q", it.Status)
				n := 0
				for _, b := range []bool{it.Status.Waiting(), it.Status.InFlight(), it.Status.Terminal()} {
					if b {
						n++
					}
				}
				require.Equal(t, 1, n, "%s in exactly one of waiting, in flight, terminal", it.Status)

				require.Equal(t, attempts, it.Attempts, "attempts")
				require.Equal(t, retries, it.RetryCount, "retry_count")
				require.GreaterOrEqual(t, it.RetryCount, 0)
				require.LessOrEqual(t, it.RetryCount, it.Attempts, "retry_count ≤ attempts")
				if !ceilingChanges {
					require.LessOrEqual(t, it.RetryCount, p.MaxRetries, "retry_count ≤ max_retries")
				}
				require.LessOrEqual(t, it.Attempts, maxCeiling, "attempts ≤ ceiling")
				if !ceilingChanges {
					require.LessOrEqual(t, it.Attempts, p.Ceiling(), "attempts ≤ ceiling")
				}
				require.Equal(t, token, it.Token, "the token grows at a dispatch, and only then")
				require.GreaterOrEqual(t, it.Token, int64(it.Attempts))

				require.Equal(t, it.Attempts > 0, it.StartedAt != nil, "started_at is set iff an attempt counts")
				require.Equal(t, it.Status.InFlight(), !it.LeaseExpiresAt.IsZero(), "a lease iff in flight")
				require.Equal(t, it.Status == pool.StatusRetrying || it.Status == pool.StatusScheduled, it.NextRetryAt != nil,
					"next_retry_at iff Retrying or Scheduled")
				if it.Status == pool.StatusCompleted {
					require.NotNil(t, it.CompletedAt)
				}
				if it.Status == pool.StatusFailed {
					require.NotNil(t, it.FailedAt)
				}
				if it.Status.Terminal() || it.Status.InFlight() {
					require.False(t, it.Due(clock), "only a waiting item is due")
				}

				require.Equal(t, first.ContactUUID, it.ContactUUID)
				require.Equal(t, first.PoolUUID, it.PoolUUID)
				require.Equal(t, first.AddedAt, it.AddedAt, "a retried item keeps its insertion place")
			},
		}
		t.Repeat(actions)
	})
}

// The property generators themselves produce what they claim.
func TestGenerators(t *testing.T) {
	t.Parallel()

	rapid.Check(t, func(t *rapid.T) {
		n := genValidName.Draw(t, "name")
		require.True(t, utf8.ValidString(n))
		require.GreaterOrEqual(t, utf8.RuneCountInString(n), pool.MinNameLen)
		require.LessOrEqual(t, utf8.RuneCountInString(n), pool.MaxNameLen)
		require.NotEmpty(t, strings.TrimSpace(n))
		typ := genTypeSpelling.Draw(t, "type")
		_, ok := pool.ParseType(string(typ))
		require.True(t, ok)
		bad := genInvalidType.Draw(t, "bad type")
		_, ok = pool.ParseType(string(bad))
		require.False(t, ok)
	})
}

// breaksLine reports the runes a name may not hold: control characters and
// Unicode's line and paragraph separators (validate.Validator.Line).
func breaksLine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}
