package pool_test

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// createCases covers every rule and default of CreateParams. A case with an
// empty wantErr is valid, and want (applied to the all-defaults pool) is
// the pool New must return.
var createCases = []struct {
	name    string
	edit    func(p *pool.CreateParams)
	wantErr map[string]string // field → rule
	want    func(p *pool.Pool)
}{
	{name: "OKDefaults", edit: func(*pool.CreateParams) {}},

	// name
	{name: "ErrNameMissing", edit: func(p *pool.CreateParams) { p.Name = "" }, wantErr: map[string]string{"name": validate.RuleRequired}},
	{name: "ErrNameBlank", edit: func(p *pool.CreateParams) { p.Name = "   " }, wantErr: map[string]string{"name": validate.RuleRequired}},
	{name: "ErrNameTabsAndNewlines", edit: func(p *pool.CreateParams) { p.Name = "\t\n \r" }, wantErr: map[string]string{"name": validate.RuleRequired}},
	{name: "ErrNameOneCharacter", edit: func(p *pool.CreateParams) { p.Name = "a" }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "ErrNameTwoCharacters", edit: func(p *pool.CreateParams) { p.Name = "ab" }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "OKNameThreeCharacters", edit: func(p *pool.CreateParams) { p.Name = "abc" }, want: func(p *pool.Pool) { p.Name = "abc" }},
	{
		name: "OKName255Characters",
		edit: func(p *pool.CreateParams) { p.Name = strings.Repeat("n", 255) },
		want: func(p *pool.Pool) { p.Name = strings.Repeat("n", 255) },
	},
	{name: "ErrName256Characters", edit: func(p *pool.CreateParams) { p.Name = strings.Repeat("n", 256) }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "OKNameJapanese3", edit: func(p *pool.CreateParams) { p.Name = "日本語" }, want: func(p *pool.Pool) { p.Name = "日本語" }},
	{name: "ErrNameJapanese2", edit: func(p *pool.CreateParams) { p.Name = "日本" }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "OKNameCyrillic3", edit: func(p *pool.CreateParams) { p.Name = "Вип" }, want: func(p *pool.Pool) { p.Name = "Вип" }},
	{name: "ErrNameCyrillic2", edit: func(p *pool.CreateParams) { p.Name = "Ви" }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "OKNameEmoji3", edit: func(p *pool.CreateParams) { p.Name = "🔥🚀⭐" }, want: func(p *pool.Pool) { p.Name = "🔥🚀⭐" }},
	{name: "ErrNameEmoji2", edit: func(p *pool.CreateParams) { p.Name = "🔥🚀" }, wantErr: map[string]string{"name": validate.RuleLength}}, // 8 bytes
	{
		name: "OKName255MultiByteRunes",
		edit: func(p *pool.CreateParams) { p.Name = strings.Repeat("語", 255) }, // 765 bytes
		want: func(p *pool.Pool) { p.Name = strings.Repeat("語", 255) },
	},
	{
		name: "OKName255Emoji",
		edit: func(p *pool.CreateParams) { p.Name = strings.Repeat("🚀", 255) }, // 1020 bytes
		want: func(p *pool.Pool) { p.Name = strings.Repeat("🚀", 255) },
	},
	{name: "ErrName256MultiByteRunes", edit: func(p *pool.CreateParams) { p.Name = strings.Repeat("語", 256) }, wantErr: map[string]string{"name": validate.RuleLength}},
	{name: "ErrNameInvalidUTF8", edit: func(p *pool.CreateParams) { p.Name = "VIP \xff\xfe" }, wantErr: map[string]string{"name": validate.RuleFormat}},

	// description
	{name: "ErrDescriptionMissing", edit: func(p *pool.CreateParams) { p.Description = "" }, wantErr: map[string]string{"description": validate.RuleRequired}},
	{name: "ErrDescriptionBlank", edit: func(p *pool.CreateParams) { p.Description = " \t\n " }, wantErr: map[string]string{"description": validate.RuleRequired}},
	{name: "OKDescriptionOneCharacter", edit: func(p *pool.CreateParams) { p.Description = "x" }, want: func(p *pool.Pool) { p.Description = "x" }},
	{
		name: "OKDescriptionTrimmed",
		edit: func(p *pool.CreateParams) { p.Description = "  padded\n " },
		want: func(p *pool.Pool) { p.Description = "padded" },
	},
	{
		name: "OKNameTrimmed",
		edit: func(p *pool.CreateParams) { p.Name = "\t VIP  " },
		want: func(p *pool.Pool) { p.Name = "VIP" },
	},
	{
		name: "OKDescriptionAtMax",
		edit: func(p *pool.CreateParams) { p.Description = strings.Repeat("d", pool.MaxDescriptionLen) },
		want: func(p *pool.Pool) { p.Description = strings.Repeat("d", pool.MaxDescriptionLen) },
	},
	{
		name: "OKDescription4000MultiByteRunes",
		edit: func(p *pool.CreateParams) { p.Description = strings.Repeat("語", 4000) }, // 12,000 bytes
		want: func(p *pool.Pool) { p.Description = strings.Repeat("語", 4000) },
	},
	{name: "ErrDescription4001Characters", edit: func(p *pool.CreateParams) { p.Description = strings.Repeat("d", 4001) }, wantErr: map[string]string{"description": validate.RuleLength}},

	// type
	{name: "OKTypeEmptyDefaultsToFIFO", edit: func(p *pool.CreateParams) { p.Type = "" }, want: func(p *pool.Pool) { p.Type = pool.FIFO }},
	{name: "OKTypeFIFO", edit: func(p *pool.CreateParams) { p.Type = "FIFO" }, want: func(p *pool.Pool) { p.Type = pool.FIFO }},
	{name: "OKTypeFifoLower", edit: func(p *pool.CreateParams) { p.Type = "fifo" }, want: func(p *pool.Pool) { p.Type = pool.FIFO }},
	{name: "OKTypeLIFO", edit: func(p *pool.CreateParams) { p.Type = "LIFO" }, want: func(p *pool.Pool) { p.Type = pool.LIFO }},
	{name: "OKTypeLifoMixed", edit: func(p *pool.CreateParams) { p.Type = "lIfO" }, want: func(p *pool.Pool) { p.Type = pool.LIFO }},
	{name: "OKTypeParallel", edit: func(p *pool.CreateParams) { p.Type = "Parallel" }, want: func(p *pool.Pool) { p.Type = pool.Parallel }},
	{name: "OKTypeParallelMixed", edit: func(p *pool.CreateParams) { p.Type = "pArAlLeL" }, want: func(p *pool.Pool) { p.Type = pool.Parallel }},
	{name: "OKTypeParallelUpper", edit: func(p *pool.CreateParams) { p.Type = "PARALLEL" }, want: func(p *pool.Pool) { p.Type = pool.Parallel }},
	{name: "ErrTypeUnknown", edit: func(p *pool.CreateParams) { p.Type = "Random" }, wantErr: map[string]string{"type": validate.RuleEnum}},
	{name: "ErrTypeTrailingSpace", edit: func(p *pool.CreateParams) { p.Type = "FIFO " }, wantErr: map[string]string{"type": validate.RuleEnum}},
	{name: "ErrTypeLeadingSpace", edit: func(p *pool.CreateParams) { p.Type = " LIFO" }, wantErr: map[string]string{"type": validate.RuleEnum}},
	{name: "ErrTypeBlank", edit: func(p *pool.CreateParams) { p.Type = " " }, wantErr: map[string]string{"type": validate.RuleEnum}},
	{name: "ErrTypePrefix", edit: func(p *pool.CreateParams) { p.Type = "Para" }, wantErr: map[string]string{"type": validate.RuleEnum}},

	// max_parallel_items
	{name: "OKMaxParallelNilDefaults10", edit: func(p *pool.CreateParams) { p.MaxParallelItems = nil }, want: func(p *pool.Pool) { p.MaxParallelItems = 10 }},
	{name: "ErrMaxParallel0", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(0) }, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
	{name: "OKMaxParallel1", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(1) }, want: func(p *pool.Pool) { p.MaxParallelItems = 1 }},
	{name: "OKMaxParallel100", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(100) }, want: func(p *pool.Pool) { p.MaxParallelItems = 100 }},
	{name: "ErrMaxParallel101NotClamped", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(101) }, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
	{name: "ErrMaxParallelNegative", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(-1) }, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
	{name: "ErrMaxParallelMaxInt", edit: func(p *pool.CreateParams) { p.MaxParallelItems = ptr(math.MaxInt) }, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
	{
		name: "OKMaxParallelKeptForFIFO",
		edit: func(p *pool.CreateParams) { p.Type, p.MaxParallelItems = pool.FIFO, ptr(42) },
		want: func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.FIFO, 42 },
	},

	// max_retries
	{name: "OKMaxRetriesNilDefaults3", edit: func(p *pool.CreateParams) { p.MaxRetries = nil }, want: func(p *pool.Pool) { p.MaxRetries = 3 }},
	{name: "OKMaxRetries0KeptNotDefaulted", edit: func(p *pool.CreateParams) { p.MaxRetries = ptr(0) }, want: func(p *pool.Pool) { p.MaxRetries = 0 }},
	{name: "OKMaxRetries1", edit: func(p *pool.CreateParams) { p.MaxRetries = ptr(1) }, want: func(p *pool.Pool) { p.MaxRetries = 1 }},
	{name: "OKMaxRetriesLarge", edit: func(p *pool.CreateParams) { p.MaxRetries = ptr(1000) }, want: func(p *pool.Pool) { p.MaxRetries = 1000 }},
	{name: "ErrMaxRetriesNegative", edit: func(p *pool.CreateParams) { p.MaxRetries = ptr(-1) }, wantErr: map[string]string{"max_retries": validate.RuleRange}},
	{name: "ErrMaxRetriesMinInt", edit: func(p *pool.CreateParams) { p.MaxRetries = ptr(math.MinInt) }, wantErr: map[string]string{"max_retries": validate.RuleRange}},

	// is_active
	{name: "OKIsActiveNilDefaultsTrue", edit: func(p *pool.CreateParams) { p.IsActive = nil }, want: func(p *pool.Pool) { p.IsActive = true }},
	{name: "OKIsActiveFalseKept", edit: func(p *pool.CreateParams) { p.IsActive = ptr(false) }, want: func(p *pool.Pool) { p.IsActive = false }},
	{name: "OKIsActiveTrue", edit: func(p *pool.CreateParams) { p.IsActive = ptr(true) }, want: func(p *pool.Pool) { p.IsActive = true }},

	// everything at once
	{
		name: "OKEveryFieldGiven",
		edit: func(p *pool.CreateParams) {
			*p = pool.CreateParams{
				Name: "Hot leads", Description: "Newest first", Type: "lifo",
				MaxParallelItems: ptr(20), MaxRetries: ptr(5), IsActive: ptr(false),
			}
		},
		want: func(p *pool.Pool) {
			p.Name, p.Description, p.Type = "Hot leads", "Newest first", pool.LIFO
			p.MaxParallelItems, p.MaxRetries, p.IsActive = 20, 5, false
		},
	},
	{
		name: "ErrEveryFieldWrong",
		edit: func(p *pool.CreateParams) {
			*p = pool.CreateParams{
				Name: "ab", Description: "  ", Type: "Random",
				MaxParallelItems: ptr(0), MaxRetries: ptr(-1), IsActive: ptr(false),
			}
		},
		wantErr: map[string]string{
			"name":               validate.RuleLength,
			"description":        validate.RuleRequired,
			"type":               validate.RuleEnum,
			"max_parallel_items": validate.RuleRange,
			"max_retries":        validate.RuleRange,
		},
	},
	{
		name: "ErrEveryFieldMissingOrWrong",
		edit: func(p *pool.CreateParams) {
			*p = pool.CreateParams{Type: "FIFO ", MaxParallelItems: ptr(101), MaxRetries: ptr(-5)}
		},
		wantErr: map[string]string{
			"name":               validate.RuleRequired,
			"description":        validate.RuleRequired,
			"type":               validate.RuleEnum,
			"max_parallel_items": validate.RuleRange,
			"max_retries":        validate.RuleRange,
		},
	},
}

// defaultPool is the pool New makes from validCreate at t0.
func defaultPool() pool.Pool {
	return pool.Pool{
		UUID:             poolID,
		Name:             "VIP customers",
		Description:      "High-value leads, push first",
		Type:             pool.FIFO,
		MaxParallelItems: 10,
		MaxRetries:       3,
		IsActive:         true,
		CreatedAt:        t0,
		UpdatedAt:        t0,
	}
}

func TestCreateParams_Validate(t *testing.T) {
	t.Parallel()

	for _, tt := range createCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validCreate()
			tt.edit(&p)
			requireFieldRules(t, p.Validate(), tt.wantErr)
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()

	for _, tt := range createCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validCreate()
			tt.edit(&p)
			got, err := pool.New(poolID, p, t0)
			if len(tt.wantErr) > 0 {
				requireFieldRules(t, err, tt.wantErr)
				require.Equal(t, pool.Pool{}, got, "a rejected create returns the zero pool")
				return
			}
			require.NoError(t, err)
			want := defaultPool()
			if tt.want != nil {
				tt.want(&want)
			}
			require.Equal(t, want, got)
			require.True(t, got.Type.Valid(), "type stored canonical: %q", got.Type)
			require.True(t, utf8.ValidString(got.Name))
		})
	}

	t.Run("ErrEveryFieldReportedInRuleOrder", func(t *testing.T) {
		t.Parallel()
		_, err := pool.New(poolID, pool.CreateParams{Name: "ab", Type: "x", MaxParallelItems: ptr(0), MaxRetries: ptr(-1)}, t0)
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.Equal(t, []string{"name", "description", "type", "max_parallel_items", "max_retries"}, es.Fields())
		require.Len(t, es, 5, "one failure per field: %v", es)
	})

	t.Run("ErrNilUUID", func(t *testing.T) {
		t.Parallel()
		got, err := pool.New(uuid.Nil, pool.CreateParams{Name: "ab"}, t0)
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.Equal(t, []string{"uuid", "name", "description"}, es.Fields(), "the id with the params' fields")
		require.Equal(t, pool.Pool{}, got)
	})

	t.Run("OKTimesInUTC", func(t *testing.T) {
		t.Parallel()
		paris := time.FixedZone("CET", 3600)
		now := time.Date(2024, 3, 1, 12, 0, 0, 123456789, paris)
		id := uuid.New()
		got, err := pool.New(id, validCreate(), now)
		require.NoError(t, err)
		require.Equal(t, id, got.UUID)
		require.Equal(t, time.UTC, got.CreatedAt.Location())
		require.Equal(t, time.UTC, got.UpdatedAt.Location())
		require.True(t, got.CreatedAt.Equal(now))
		require.Equal(t, got.CreatedAt, got.UpdatedAt)
		require.Equal(t, time.Date(2024, 3, 1, 11, 0, 0, 123456789, time.UTC), got.CreatedAt)
		require.Zero(t, got.ContactsCount)
	})

	t.Run("OKDuplicateNamesAllowed", func(t *testing.T) {
		t.Parallel()
		a, err := pool.New(uuid.New(), validCreate(), t0)
		require.NoError(t, err)
		b, err := pool.New(uuid.New(), validCreate(), t0)
		require.NoError(t, err)
		require.Equal(t, a.Name, b.Name)
	})
}

func TestPool_Cap(t *testing.T) {
	t.Parallel()

	tests := []struct {
		typ  pool.Type
		max  int
		want int
	}{
		{pool.FIFO, 10, 1},
		{pool.LIFO, 100, 1},
		{pool.Parallel, 10, 10},
		{pool.Parallel, 1, 1},
		{pool.Parallel, 100, 100},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			t.Parallel()
			p := pool.Pool{Type: tt.typ, MaxParallelItems: tt.max}
			require.Equal(t, tt.want, p.Cap())
		})
	}
}

func TestPool_Ceiling(t *testing.T) {
	t.Parallel()

	for _, retries := range []int{0, 1, 3, 10} {
		p := pool.Pool{MaxRetries: retries}
		require.Equal(t, retries+1, p.Ceiling(), "max_retries %d", retries)
	}
	require.Equal(t, 4, mustNew(t, validCreate()).Ceiling(), "default max_retries 3 → 4 dispatches")
}

func TestZeroCounts(t *testing.T) {
	t.Parallel()

	m := pool.ZeroCounts()
	require.Len(t, m, len(pool.Statuses()))
	for _, s := range pool.Statuses() {
		n, ok := m[s]
		require.True(t, ok, "missing %s", s)
		require.Zero(t, n)
	}
	m[pool.StatusPending] = 3
	require.Zero(t, pool.ZeroCounts()[pool.StatusPending], "each call returns a fresh map")
}

func TestDefaults(t *testing.T) {
	t.Parallel()

	// The API's limits and defaults, as constants.
	require.Equal(t, 3, pool.MinNameLen)
	require.Equal(t, 255, pool.MaxNameLen)
	require.Equal(t, 4000, pool.MaxDescriptionLen)
	require.Equal(t, pool.FIFO, pool.DefaultType)
	require.Equal(t, 10, pool.DefaultMaxParallelItems)
	require.Equal(t, 1, pool.MinParallelItems)
	require.Equal(t, 100, pool.MaxParallelItems)
	require.Equal(t, 3, pool.DefaultMaxRetries)
	require.True(t, pool.DefaultIsActive)
	require.Equal(t, 15, pool.DefaultPoolsPerPage)
	require.Equal(t, 25, pool.DefaultItemsPerPage)
	require.Equal(t, 100, pool.MaxPerPage)
}
