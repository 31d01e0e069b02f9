package pool_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

func TestUpdateParams_Validate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		u       pool.UpdateParams
		wantErr map[string]string
	}{
		{name: "OKEmpty", u: pool.UpdateParams{}},
		{name: "OKName", u: pool.UpdateParams{Name: ptr("abc")}},
		{name: "OKNameMultiByte", u: pool.UpdateParams{Name: ptr("日本語")}},
		{name: "OKName255MultiByte", u: pool.UpdateParams{Name: ptr(strings.Repeat("Ж", 255))}},
		{name: "ErrNameEmpty", u: pool.UpdateParams{Name: ptr("")}, wantErr: map[string]string{"name": validate.RuleRequired}},
		{name: "ErrNameBlank", u: pool.UpdateParams{Name: ptr("  ")}, wantErr: map[string]string{"name": validate.RuleRequired}},
		{name: "ErrNameTwoCharacters", u: pool.UpdateParams{Name: ptr("日本")}, wantErr: map[string]string{"name": validate.RuleLength}},
		{name: "ErrName256", u: pool.UpdateParams{Name: ptr(strings.Repeat("a", 256))}, wantErr: map[string]string{"name": validate.RuleLength}},
		{name: "ErrNameInvalidUTF8", u: pool.UpdateParams{Name: ptr("ab\xffc")}, wantErr: map[string]string{"name": validate.RuleFormat}},
		{name: "ErrNameLineBreak", u: pool.UpdateParams{Name: ptr("VIP\nleads")}, wantErr: map[string]string{"name": validate.RuleFormat}},
		{name: "ErrNameControl", u: pool.UpdateParams{Name: ptr("\x01\x02\x03")}, wantErr: map[string]string{"name": validate.RuleFormat}},
		{name: "OKDescription", u: pool.UpdateParams{Description: ptr("x")}},
		{name: "ErrDescriptionEmpty", u: pool.UpdateParams{Description: ptr("")}, wantErr: map[string]string{"description": validate.RuleRequired}},
		{name: "ErrDescriptionBlank", u: pool.UpdateParams{Description: ptr(" \n\t")}, wantErr: map[string]string{"description": validate.RuleRequired}},
		{name: "OKTypeAnyCase", u: pool.UpdateParams{Type: ptr(pool.Type("pArAlLeL"))}},
		{name: "ErrTypeEmptyGiven", u: pool.UpdateParams{Type: ptr(pool.Type(""))}, wantErr: map[string]string{"type": validate.RuleEnum}},
		{name: "ErrTypeUnknown", u: pool.UpdateParams{Type: ptr(pool.Type("Random"))}, wantErr: map[string]string{"type": validate.RuleEnum}},
		{name: "ErrTypeTrailingSpace", u: pool.UpdateParams{Type: ptr(pool.Type("FIFO "))}, wantErr: map[string]string{"type": validate.RuleEnum}},
		{name: "OKMaxParallel1", u: pool.UpdateParams{MaxParallelItems: ptr(1)}},
		{name: "OKMaxParallel100", u: pool.UpdateParams{MaxParallelItems: ptr(100)}},
		{name: "ErrMaxParallel0", u: pool.UpdateParams{MaxParallelItems: ptr(0)}, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
		{name: "ErrMaxParallel101", u: pool.UpdateParams{MaxParallelItems: ptr(101)}, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
		{name: "ErrMaxParallelNegative", u: pool.UpdateParams{MaxParallelItems: ptr(-1)}, wantErr: map[string]string{"max_parallel_items": validate.RuleRange}},
		{name: "OKMaxRetries0", u: pool.UpdateParams{MaxRetries: ptr(0)}},
		{name: "ErrMaxRetriesNegative", u: pool.UpdateParams{MaxRetries: ptr(-1)}, wantErr: map[string]string{"max_retries": validate.RuleRange}},
		{name: "OKIsActiveFalse", u: pool.UpdateParams{IsActive: ptr(false)}},
		{
			name: "ErrEveryFieldWrong",
			u: pool.UpdateParams{
				Name: ptr("ab"), Description: ptr(" "), Type: ptr(pool.Type("Random")),
				MaxParallelItems: ptr(101), MaxRetries: ptr(-1), IsActive: ptr(true),
			},
			wantErr: map[string]string{
				"name":               validate.RuleLength,
				"description":        validate.RuleRequired,
				"type":               validate.RuleEnum,
				"max_parallel_items": validate.RuleRange,
				"max_retries":        validate.RuleRange,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireFieldRules(t, tt.u.Validate(), tt.wantErr)
		})
	}
}

func TestUpdateParams_Apply(t *testing.T) {
	t.Parallel()

	// base is a pool with no default value, so that a field reset to its
	// default would show.
	base := func() pool.Pool {
		p := defaultPool()
		p.Type = pool.Parallel
		p.MaxParallelItems = 42
		p.MaxRetries = 7
		p.IsActive = false
		p.ContactsCount = 12
		return p
	}

	tests := []struct {
		name        string
		u           pool.UpdateParams
		want        func(p *pool.Pool) // nil: unchanged
		wantChanged bool
	}{
		{name: "OKNothingGiven", u: pool.UpdateParams{}},
		{name: "OKName", u: pool.UpdateParams{Name: ptr("Cold leads")}, want: func(p *pool.Pool) { p.Name = "Cold leads" }, wantChanged: true},
		{name: "OKNameMultiByte", u: pool.UpdateParams{Name: ptr("日本語")}, want: func(p *pool.Pool) { p.Name = "日本語" }, wantChanged: true},
		{name: "OKDescription", u: pool.UpdateParams{Description: ptr("new")}, want: func(p *pool.Pool) { p.Description = "new" }, wantChanged: true},
		{name: "OKTypeCanonicalized", u: pool.UpdateParams{Type: ptr(pool.Type("lifo"))}, want: func(p *pool.Pool) { p.Type = pool.LIFO }, wantChanged: true},
		{name: "OKTypeFIFO", u: pool.UpdateParams{Type: ptr(pool.FIFO)}, want: func(p *pool.Pool) { p.Type = pool.FIFO }, wantChanged: true},
		{name: "OKMaxParallel", u: pool.UpdateParams{MaxParallelItems: ptr(1)}, want: func(p *pool.Pool) { p.MaxParallelItems = 1 }, wantChanged: true},
		{name: "OKMaxRetriesZero", u: pool.UpdateParams{MaxRetries: ptr(0)}, want: func(p *pool.Pool) { p.MaxRetries = 0 }, wantChanged: true},
		{name: "OKIsActive", u: pool.UpdateParams{IsActive: ptr(true)}, want: func(p *pool.Pool) { p.IsActive = true }, wantChanged: true},
		{
			name: "OKEveryField",
			u: pool.UpdateParams{
				Name: ptr("abc"), Description: ptr("d"), Type: ptr(pool.Type("FIFO")),
				MaxParallelItems: ptr(100), MaxRetries: ptr(1), IsActive: ptr(true),
			},
			want: func(p *pool.Pool) {
				p.Name, p.Description, p.Type = "abc", "d", pool.FIFO
				p.MaxParallelItems, p.MaxRetries, p.IsActive = 100, 1, true
			},
			wantChanged: true,
		},
		{name: "OKSameNameNotChanged", u: pool.UpdateParams{Name: ptr("VIP customers")}},
		{name: "OKSameTypeOtherCaseNotChanged", u: pool.UpdateParams{Type: ptr(pool.Type("PARALLEL"))}},
		{
			name: "OKEveryValueEqualNotChanged",
			u: pool.UpdateParams{
				Name: ptr("VIP customers"), Description: ptr("High-value leads, push first"), Type: ptr(pool.Parallel),
				MaxParallelItems: ptr(42), MaxRetries: ptr(7), IsActive: ptr(false),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := base()
			got, changed, err := tt.u.Apply(in)
			require.NoError(t, err)
			want := base()
			if tt.want != nil {
				tt.want(&want)
			}
			require.Equal(t, want, got)
			require.Equal(t, tt.wantChanged, changed)
			require.Equal(t, base(), in, "Apply must not modify its input")
			// Apply leaves the bookkeeping to the caller.
			require.Equal(t, in.UUID, got.UUID)
			require.Equal(t, in.CreatedAt, got.CreatedAt)
			require.Equal(t, in.UpdatedAt, got.UpdatedAt)
			require.Equal(t, in.ContactsCount, got.ContactsCount)
		})
	}

	rejected := []struct {
		name    string
		u       pool.UpdateParams
		wantErr map[string]string
	}{
		{"ErrName", pool.UpdateParams{Name: ptr("ab")}, map[string]string{"name": validate.RuleLength}},
		{"ErrBlankDescription", pool.UpdateParams{Description: ptr("   ")}, map[string]string{"description": validate.RuleRequired}},
		{"ErrEmptyDescription", pool.UpdateParams{Description: ptr("")}, map[string]string{"description": validate.RuleRequired}},
		{"ErrType", pool.UpdateParams{Type: ptr(pool.Type("Random"))}, map[string]string{"type": validate.RuleEnum}},
		{"ErrMaxParallel", pool.UpdateParams{MaxParallelItems: ptr(0)}, map[string]string{"max_parallel_items": validate.RuleRange}},
		{"ErrMaxRetries", pool.UpdateParams{MaxRetries: ptr(-1)}, map[string]string{"max_retries": validate.RuleRange}},
		{
			"ErrOneBadFieldRejectsTheGoodOnes",
			pool.UpdateParams{Name: ptr("A fine name"), IsActive: ptr(true), MaxParallelItems: ptr(101)},
			map[string]string{"max_parallel_items": validate.RuleRange},
		},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := base()
			got, changed, err := tt.u.Apply(in)
			requireFieldRules(t, err, tt.wantErr)
			require.False(t, changed)
			require.Equal(t, base(), got, "a rejected update returns the input pool unchanged")
		})
	}
}

func TestDuplicateParams_CopyName(t *testing.T) {
	t.Parallel()

	long250 := strings.Repeat("a", 250)
	long255MB := strings.Repeat("語", 255)

	tests := []struct {
		name string
		d    pool.DuplicateParams
		src  string
		want string
	}{
		{"OKDefaultSuffix", pool.DuplicateParams{}, "VIP customers", "VIP customers (copy)"},
		{"OKDefaultSuffixMultiByte", pool.DuplicateParams{}, "日本語", "日本語 (copy)"},
		{"OKDefaultFitsExactly", pool.DuplicateParams{}, strings.Repeat("a", 248), strings.Repeat("a", 248) + " (copy)"},
		{"OKDefaultCutTo255", pool.DuplicateParams{}, long250, long250[:248] + " (copy)"},
		{"OKDefaultCut255MultiByte", pool.DuplicateParams{}, long255MB, strings.Repeat("語", 248) + " (copy)"},
		{"OKGivenName", pool.DuplicateParams{Name: ptr("Second wave")}, "VIP customers", "Second wave"},
		{"OKGivenNameTrimmed", pool.DuplicateParams{Name: ptr("  Second wave ")}, "VIP customers", "Second wave"},
		{"OKGivenNameSameAsSource", pool.DuplicateParams{Name: ptr("VIP customers")}, "VIP customers", "VIP customers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.d.CopyName(tt.src)
			require.Equal(t, tt.want, got)
			require.True(t, utf8.ValidString(got), "a cut must not split a rune")
			require.LessOrEqual(t, utf8.RuneCountInString(got), pool.MaxNameLen)
			// The default name of a copy of a valid pool is itself valid.
			require.NoError(t, pool.DuplicateParams{Name: ptr(got)}.Validate())
		})
	}

	t.Run("OKDefaultForEveryValidLength", func(t *testing.T) {
		t.Parallel()
		for n := pool.MinNameLen; n <= pool.MaxNameLen; n++ {
			src := strings.Repeat("ж", n)
			got := pool.DuplicateParams{}.CopyName(src)
			require.True(t, strings.HasSuffix(got, " (copy)"), "length %d: the marker shows", n)
			require.True(t, strings.HasPrefix(src, strings.TrimSuffix(got, " (copy)")), "length %d", n)
			require.Equal(t, min(n+len(" (copy)"), pool.MaxNameLen), utf8.RuneCountInString(got), "length %d", n)
			require.NoError(t, pool.DuplicateParams{Name: ptr(got)}.Validate(), "length %d", n)
		}
	})
}

func TestDuplicateParams_Validate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		d       pool.DuplicateParams
		wantErr map[string]string
	}{
		{name: "OKNoName", d: pool.DuplicateParams{}},
		{name: "OKName", d: pool.DuplicateParams{Name: ptr("Copy of VIP")}},
		{name: "OKNameMultiByte", d: pool.DuplicateParams{Name: ptr("日本語")}},
		{name: "OKCopyContactsFalse", d: pool.DuplicateParams{CopyContacts: ptr(false)}},
		{name: "ErrNameEmpty", d: pool.DuplicateParams{Name: ptr("")}, wantErr: map[string]string{"name": validate.RuleRequired}},
		{name: "ErrNameBlank", d: pool.DuplicateParams{Name: ptr(" ")}, wantErr: map[string]string{"name": validate.RuleRequired}},
		{name: "ErrNameShort", d: pool.DuplicateParams{Name: ptr("ab")}, wantErr: map[string]string{"name": validate.RuleLength}},
		{name: "ErrNameLong", d: pool.DuplicateParams{Name: ptr(strings.Repeat("語", 256))}, wantErr: map[string]string{"name": validate.RuleLength}},
		// A given name is trimmed before its length is checked, as CopyName
		// trims it: the copy is named what was validated.
		{name: "ErrNameShortOnceTrimmed", d: pool.DuplicateParams{Name: ptr("  ab ")}, wantErr: map[string]string{"name": validate.RuleLength}},
		{name: "OKName255OnceTrimmed", d: pool.DuplicateParams{Name: ptr(" " + strings.Repeat("語", 255) + "\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireFieldRules(t, tt.d.Validate(), tt.wantErr)
		})
	}
}

func TestDuplicateParams_Copies(t *testing.T) {
	t.Parallel()

	require.True(t, pool.DuplicateParams{}.Copies(), "default true")
	require.True(t, pool.DuplicateParams{CopyContacts: ptr(true)}.Copies())
	require.False(t, pool.DuplicateParams{CopyContacts: ptr(false)}.Copies())
}
