package validate_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/validate"
)

// ruleOf runs one rule on a fresh Validator and returns what it reported and
// what it recorded.
func ruleOf(rule func(v *validate.Validator) bool) (bool, validate.Errors) {
	var v validate.Validator
	ok := rule(&v)
	return ok, v.Errors()
}

// requireOneFailure checks that errs holds exactly one failure of field with
// rule.
func requireOneFailure(t *testing.T, errs validate.Errors, field, rule string) validate.FieldError {
	t.Helper()
	require.Len(t, errs, 1, "failures: %v", errs)
	require.Equal(t, field, errs[0].Field)
	require.Equal(t, rule, errs[0].Rule)
	require.NotEmpty(t, errs[0].Message)
	return errs[0]
}

func TestValidator_Required(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"OK", "VIP customers", true},
		{"OKOneCharacter", "x", true},
		{"OKSurroundedBySpaces", "  x  ", true},
		{"OKMultiByte", "日本語", true},
		{"ErrEmpty", "", false},
		{"ErrSpaces", "   ", false},
		{"ErrTabsAndNewlines", "\t\r\n ", false},
		{"ErrNoBreakSpace", "\u00a0", false},
		{"ErrIdeographicSpace", "\u3000\u3000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Required("description", tt.in) })
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "description", validate.RuleRequired)
			require.Equal(t, "is required", fe.Message)
		})
	}
}

// TestValidator_RequiredInvalidUTF8: a value that is not valid UTF-8 fails
// Required with rule "format", not "required": it is not blank, but it is
// not text either.
func TestValidator_RequiredInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"\xff", "VIP \xfe\xff", "  \xc3"} {
		ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Required("description", in) })
		require.False(t, ok, "%q", in)
		fe := requireOneFailure(t, errs, "description", validate.RuleFormat)
		require.Equal(t, "must be valid UTF-8", fe.Message)
	}
}

func TestValidator_Text(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		max      int
		rule     string // "" when the value passes
		message  string
	}{
		{"OKEmpty", "", 10, "", ""},
		{"OKAtMax", strings.Repeat("日", 10), 10, "", ""},
		{"OKNoLimit", strings.Repeat("a", 100_000), 0, "", ""},
		{"OKNewlinesAndTabs", "line one\n\tline two", 0, "", ""},
		{"ErrTooLong", strings.Repeat("日", 11), 10, validate.RuleLength, "must be at most 10 characters (got 11)"},
		{"ErrInvalidUTF8", "busy \xff", 10, validate.RuleFormat, "must be valid UTF-8"},
		{"ErrNUL", "bu\x00sy", 10, validate.RuleFormat, "must not contain NUL characters"},
		{"ErrNULAtEnd", "busy\x00", 0, validate.RuleFormat, "must not contain NUL characters"},
		{"ErrNULFirst", "\x00busy", 10, validate.RuleFormat, "must not contain NUL characters"},
		{"ErrOnlyNUL", "\x00", 0, validate.RuleFormat, "must not contain NUL characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Text("note", tt.in, tt.max) })
			require.Equal(t, tt.rule == "", ok)
			if tt.rule == "" {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "note", tt.rule)
			require.Equal(t, tt.message, fe.Message)
		})
	}
}

func TestValidator_Line(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"OK", "VIP customers", true},
		{"OKEmpty", "", true},
		{"OKUnicode", "Café 日本 😀", true},
		{"OKNoBreakSpace", "VIP\u00a0customers", true},
		{"ErrNewline", "VIP\ncustomers", false},
		{"ErrCarriageReturn", "VIP\rcustomers", false},
		{"ErrTab", "VIP\tcustomers", false},
		{"ErrDEL", "VIP\x7fcustomers", false},
		{"ErrNextLine", "VIP\u0085customers", false},
		{"ErrLineSeparator", "VIP\u2028customers", false},
		{"ErrParagraphSeparator", "VIP\u2029customers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Line("name", tt.in) })
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "name", validate.RuleFormat)
			require.Equal(t, "must not contain control characters or line separators (line breaks, tabs…)", fe.Message)
		})
	}
}

func TestValidator_Length(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		in       string
		min, max int
		rule     string // "" when the value passes
		got      int    // rune count in the message when rule is "length"
	}{
		{"OKAtMin", "abc", 3, 255, "", 0},
		{"OKJapaneseIsThreeRunes", "日本語", 3, 255, "", 0},
		{"OKCyrillic", "Вип", 3, 255, "", 0},
		{"OKEmoji", "🚀🚀🚀", 3, 255, "", 0},
		{"OKCombiningMarkCountsAsARune", "ab\u0301", 3, 255, "", 0},
		{"OKAtMax", strings.Repeat("a", 255), 3, 255, "", 0},
		{"OKAtMaxMultiByte", strings.Repeat("日", 255), 3, 255, "", 0}, // 765 bytes
		{"OKAtMaxEmoji", strings.Repeat("😀", 255), 3, 255, "", 0},     // 1020 bytes
		{"ErrTooShort", "ab", 3, 255, validate.RuleLength, 2},
		{"ErrTooShortMultiByte", "日本", 3, 255, validate.RuleLength, 2}, // 6 bytes, 2 runes
		{"ErrEmpty", "", 3, 255, validate.RuleLength, 0},
		{"ErrTooLong", strings.Repeat("a", 256), 3, 255, validate.RuleLength, 256},
		{"ErrTooLongMultiByte", strings.Repeat("日", 256), 3, 255, validate.RuleLength, 256},
		{"ErrInvalidUTF8", "\xff\xfe\xfd", 3, 255, validate.RuleFormat, 0},
		{"ErrInvalidUTF8InsideValidText", "abc\xc3def", 3, 255, validate.RuleFormat, 0},
		{"ErrTruncatedMultiByte", "日本語"[:8], 1, 255, validate.RuleFormat, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Length("name", tt.in, tt.min, tt.max) })
			require.Equal(t, tt.rule == "", ok)
			if tt.rule == "" {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "name", tt.rule)
			switch tt.rule {
			case validate.RuleLength:
				require.Equal(t,
					fmt.Sprintf("must be between %d and %d characters (got %d)", tt.min, tt.max, tt.got),
					fe.Message)
			case validate.RuleFormat:
				require.Equal(t, "must be valid UTF-8", fe.Message)
			}
		})
	}
}

func TestValidator_IntRange(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"OKMin", 1, true},
		{"OKMiddle", 50, true},
		{"OKMax", 100, true},
		{"ErrBelowMin", 0, false},
		{"ErrNegative", -1, false},
		{"ErrAboveMax", 101, false},
		{"ErrMinInt", math.MinInt, false},
		{"ErrMaxInt", math.MaxInt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.IntRange("max_parallel_items", tt.n, 1, 100) })
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "max_parallel_items", validate.RuleRange)
			require.Equal(t, fmt.Sprintf("must be between 1 and 100 (got %d)", tt.n), fe.Message)
		})
	}
}

func TestValidator_IntMin(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"OKAtMin", 0, true},
		{"OKAboveMin", 3, true},
		{"OKMaxInt", math.MaxInt, true},
		{"ErrJustBelow", -1, false},
		{"ErrMinInt", math.MinInt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, errs := ruleOf(func(v *validate.Validator) bool { return v.IntMin("max_retries", tt.n, 0) })
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Empty(t, errs)
				return
			}
			fe := requireOneFailure(t, errs, "max_retries", validate.RuleRange)
			require.Equal(t, fmt.Sprintf("must be at least 0 (got %d)", tt.n), fe.Message)
		})
	}
}

func TestValidator_OneOf(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ok, errs := ruleOf(func(v *validate.Validator) bool {
			return v.OneOf("type", "fifo", true, "FIFO", "LIFO", "Parallel")
		})
		require.True(t, ok)
		require.Empty(t, errs)
	})

	t.Run("ErrNotAllowed", func(t *testing.T) {
		t.Parallel()
		ok, errs := ruleOf(func(v *validate.Validator) bool {
			return v.OneOf("type", "Random", false, "FIFO", "LIFO", "Parallel")
		})
		require.False(t, ok)
		fe := requireOneFailure(t, errs, "type", validate.RuleEnum)
		require.Equal(t, `must be one of FIFO, LIFO, Parallel (got "Random")`, fe.Message)
	})

	t.Run("ErrQuotesTheValue", func(t *testing.T) {
		t.Parallel()
		_, errs := ruleOf(func(v *validate.Validator) bool {
			return v.OneOf("type", "FIFO ", false, "FIFO")
		})
		require.Contains(t, errs[0].Message, `(got "FIFO ")`, "a trailing space must be visible")
	})

	t.Run("ErrQuotesALongValueCut", func(t *testing.T) {
		t.Parallel()
		_, errs := ruleOf(func(v *validate.Validator) bool {
			return v.OneOf("type", strings.Repeat("é", 1<<20), false, "FIFO")
		})
		require.Equal(t, `must be one of FIFO (got "`+strings.Repeat("é", 40)+`"… (2097152 bytes))`, errs[0].Message)
	})
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"FIFO ", `"FIFO "`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", 40), `"` + strings.Repeat("x", 40) + `"`},
		{strings.Repeat("x", 41), `"` + strings.Repeat("x", 40) + `"… (41 bytes)`},
		{strings.Repeat("日", 41), `"` + strings.Repeat("日", 40) + `"… (123 bytes)`},
		{"\xff" + strings.Repeat("x", 45), `"\xff` + strings.Repeat("x", 39) + `"… (46 bytes)`},
	} {
		require.Equal(t, tc.want, validate.Quote(tc.in), "Quote(%q)", tc.in)
	}
}

func TestValidator_Check(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ok, errs := ruleOf(func(v *validate.Validator) bool { return v.Check(true, "x", "custom", "never") })
		require.True(t, ok)
		require.Empty(t, errs)
	})

	t.Run("ErrCustomRule", func(t *testing.T) {
		t.Parallel()
		ok, errs := ruleOf(func(v *validate.Validator) bool {
			return v.Check(false, "items[0].contact_uuid", "custom", "is wrong")
		})
		require.False(t, ok)
		require.Equal(t, validate.Errors{{Field: "items[0].contact_uuid", Rule: "custom", Message: "is wrong"}}, errs)
	})
}

func TestValidator_Add(t *testing.T) {
	t.Parallel()

	var v validate.Validator
	v.Add("a", "r1", "m1")
	v.Add("a", "r2", "m2")
	require.Equal(t, validate.Errors{
		{Field: "a", Rule: "r1", Message: "m1"},
		{Field: "a", Rule: "r2", Message: "m2"},
	}, v.Errors())
}

func TestValidator_Merge(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		prefix string
		err    error
		want   validate.Errors
	}{
		{
			name:   "OKNil",
			prefix: "items[0].",
			err:    nil,
			want:   nil,
		},
		{
			name:   "Errors",
			prefix: "items[2].",
			err: validate.Errors{
				{Field: "contact_uuid", Rule: validate.RuleRequired, Message: "is required"},
				{Field: "payload", Rule: validate.RuleFormat, Message: "must be valid JSON"},
			},
			want: validate.Errors{
				{Field: "items[2].contact_uuid", Rule: validate.RuleRequired, Message: "is required"},
				{Field: "items[2].payload", Rule: validate.RuleFormat, Message: "must be valid JSON"},
			},
		},
		{
			name:   "FieldError",
			prefix: "rule.",
			err:    validate.FieldError{Field: "max_total_calls", Rule: validate.RuleRange, Message: "must be at least 1 (got 0)"},
			want: validate.Errors{
				{Field: "rule.max_total_calls", Rule: validate.RuleRange, Message: "must be at least 1 (got 0)"},
			},
		},
		{
			name:   "WrappedErrors",
			prefix: "items[1].",
			err:    fmt.Errorf("item: %w", validate.Errors{{Field: "payload", Rule: validate.RuleFormat, Message: "m"}}),
			want:   validate.Errors{{Field: "items[1].payload", Rule: validate.RuleFormat, Message: "m"}},
		},
		{
			name:   "WrappedFieldErrorPointer",
			prefix: "rule.",
			err:    fmt.Errorf("rule: %w", &validate.FieldError{Field: "end_time", Rule: validate.RuleFormat, Message: "m"}),
			want:   validate.Errors{{Field: "rule.end_time", Rule: validate.RuleFormat, Message: "m"}},
		},
		{
			name:   "EmptyPrefix",
			prefix: "",
			err:    validate.Errors{{Field: "name", Rule: validate.RuleLength, Message: "m"}},
			want:   validate.Errors{{Field: "name", Rule: validate.RuleLength, Message: "m"}},
		},
		{
			name:   "PlainErrorNamesThePrefixWithoutItsDot",
			prefix: "items[5].payload.",
			err:    errors.New("unexpected end of JSON input"),
			want: validate.Errors{
				{Field: "items[5].payload", Rule: validate.RuleFormat, Message: "unexpected end of JSON input"},
			},
		},
		{
			// An empty Errors is an error under ErrInvalid: a failure,
			// never dropped.
			name:   "EmptyErrors",
			prefix: "items[0].",
			err:    validate.Errors{},
			want:   validate.Errors{{Field: "items[0]", Rule: validate.RuleFormat, Message: "invalid input"}},
		},
		{
			name:   "NilFieldErrorPointer",
			prefix: "rule.",
			err:    fmt.Errorf("rule: %w", (*validate.FieldError)(nil)),
			want:   validate.Errors{{Field: "rule", Rule: validate.RuleFormat, Message: "invalid (a nil *validate.FieldError)"}},
		},
		{
			name:   "PlainErrorPrefixWithoutDot",
			prefix: "payload",
			err:    errors.New("bad"),
			want:   validate.Errors{{Field: "payload", Rule: validate.RuleFormat, Message: "bad"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v validate.Validator
			v.Merge(tt.prefix, tt.err)
			require.Equal(t, tt.want, v.Errors())
		})
	}

	t.Run("KeepsEarlierFailuresAndOrder", func(t *testing.T) {
		t.Parallel()
		var v validate.Validator
		v.Required("name", "")
		v.Merge("items[0].", validate.Errors{{Field: "payload", Rule: validate.RuleFormat, Message: "m"}})
		v.IntMin("max_retries", -1, 0)
		require.Equal(t, []string{"name", "items[0].payload", "max_retries"}, v.Errors().Fields())
	})

	t.Run("DoesNotChangeTheMergedErrors", func(t *testing.T) {
		t.Parallel()
		inner := validate.Errors{{Field: "payload", Rule: validate.RuleFormat, Message: "m"}}
		var v validate.Validator
		v.Merge("items[1].", inner)
		require.Equal(t, "payload", inner[0].Field)
	})
}

func TestValidator_Err(t *testing.T) {
	t.Parallel()

	t.Run("OKZeroValueIsNil", func(t *testing.T) {
		t.Parallel()
		var v validate.Validator
		require.Nil(t, v.Errors())
		err := v.Err()
		require.NoError(t, err)
		require.True(t, err == nil, "Err must return an untyped nil, not a nil Errors in an interface")
	})

	t.Run("OKPassingRulesRecordNothing", func(t *testing.T) {
		t.Parallel()
		var v validate.Validator
		v.Required("name", "abc")
		v.Length("name", "abc", 3, 255)
		v.IntRange("n", 5, 1, 10)
		v.IntMin("m", 0, 0)
		v.OneOf("type", "FIFO", true, "FIFO")
		v.Check(true, "x", "r", "m")
		require.NoError(t, v.Err())
	})

	t.Run("ErrCollectsEveryFailureInOrder", func(t *testing.T) {
		t.Parallel()
		var v validate.Validator
		v.Length("name", "ab", 3, 255)
		v.Required("description", " ")
		v.OneOf("type", "Random", false, "FIFO", "LIFO", "Parallel")
		v.IntRange("max_parallel_items", 0, 1, 100)
		v.IntMin("max_retries", -1, 0)

		err := v.Err()
		require.Error(t, err)
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.Equal(t, []string{"name", "description", "type", "max_parallel_items", "max_retries"}, es.Fields())
		rules := make([]string, 0, len(es))
		for _, e := range es {
			rules = append(rules, e.Rule)
		}
		require.Equal(t, []string{
			validate.RuleLength, validate.RuleRequired, validate.RuleEnum, validate.RuleRange, validate.RuleRange,
		}, rules)
		require.Equal(t, v.Errors(), es)
	})
}

// TestValidator_MergeJoined: Merge records every failure of an error that
// joins several (errors.Join, fmt.Errorf with several %w), a plain branch
// as a failure of the prefix: errors.As found the first only, and Merge
// dropped the others, though "a failure passed in is never dropped".
func TestValidator_MergeJoined(t *testing.T) {
	a := validate.Errors{{Field: "name", Rule: validate.RuleLength, Message: "m"}}
	b := validate.Errors{{Field: "type", Rule: validate.RuleEnum, Message: "m"}}
	uuid := validate.FieldError{Field: "uuid", Rule: validate.RuleRequired, Message: "m"}

	var v validate.Validator
	v.Merge("", errors.Join(a, b))
	require.Equal(t, []string{"name", "type"}, v.Errors().Fields())

	var w validate.Validator
	w.Merge("p.", fmt.Errorf("add: %w, %w", uuid, fmt.Errorf("item: %w", a)))
	require.Equal(t, []string{"p.uuid", "p.name"}, w.Errors().Fields())

	var x validate.Validator
	x.Merge("items[0].", errors.Join(a, errors.New("unexpected end of JSON input")))
	require.Equal(t, []string{"items[0].name", "items[0]"}, x.Errors().Fields())
	require.Equal(t, validate.RuleFormat, x.Errors()[1].Rule)
}
