package validate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/validate"
)

func sampleErrors() validate.Errors {
	return validate.Errors{
		{Field: "name", Rule: validate.RuleLength, Message: "must be between 3 and 255 characters (got 2)"},
		{Field: "type", Rule: validate.RuleEnum, Message: `must be one of FIFO, LIFO, Parallel (got "Random")`},
		{Field: "name", Rule: "custom", Message: "is taken"},
	}
}

func TestFieldError_Error(t *testing.T) {
	t.Parallel()

	fe := validate.FieldError{Field: "items[3].contact_uuid", Rule: validate.RuleRequired, Message: "is required"}
	require.Equal(t, "items[3].contact_uuid: is required", fe.Error())
}

func TestFieldError_Is(t *testing.T) {
	t.Parallel()

	var err error = validate.FieldError{Field: "name", Rule: validate.RuleRequired, Message: "is required"}
	require.ErrorIs(t, err, validate.ErrInvalid)
	require.ErrorIs(t, fmt.Errorf("create pool: %w", err), validate.ErrInvalid)
	require.NotErrorIs(t, err, io.EOF)
}

func TestFieldError_MarshalJSON(t *testing.T) {
	t.Parallel()

	fe := validate.FieldError{Field: "name", Rule: validate.RuleLength, Message: "must be between 3 and 255 characters (got 2)"}
	b, err := json.Marshal(fe)
	require.NoError(t, err)
	require.JSONEq(t, `{"field":"name","rule":"length","message":"must be between 3 and 255 characters (got 2)"}`, string(b))

	var keys map[string]any
	require.NoError(t, json.Unmarshal(b, &keys))
	require.Len(t, keys, 3, "exactly field, rule and message: %s", b)

	var back validate.FieldError
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, fe, back)
}

func TestErrors_Error(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		es   validate.Errors
		want string
	}{
		{"Empty", validate.Errors{}, "invalid input"},
		{"One", validate.Errors{{Field: "name", Rule: validate.RuleRequired, Message: "is required"}}, "invalid input: name: is required"},
		{
			"Several",
			sampleErrors(),
			`invalid input: name: must be between 3 and 255 characters (got 2); type: must be one of FIFO, LIFO, Parallel (got "Random"); name: is taken`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.es.Error())
		})
	}
}

func TestErrors_Is(t *testing.T) {
	t.Parallel()

	var err error = sampleErrors()

	t.Run("OKDirect", func(t *testing.T) {
		t.Parallel()
		require.ErrorIs(t, err, validate.ErrInvalid)
	})

	t.Run("OKWrapped", func(t *testing.T) {
		t.Parallel()
		wrapped := fmt.Errorf("api: %w", fmt.Errorf("create pool: %w", err))
		require.ErrorIs(t, wrapped, validate.ErrInvalid)
		require.Contains(t, wrapped.Error(), "create pool: invalid input: name:")
	})

	t.Run("OKJoined", func(t *testing.T) {
		t.Parallel()
		require.ErrorIs(t, errors.Join(io.EOF, err), validate.ErrInvalid)
	})

	t.Run("ErrOtherSentinel", func(t *testing.T) {
		t.Parallel()
		require.NotErrorIs(t, err, io.EOF)
		require.NotErrorIs(t, fmt.Errorf("x: %w", io.EOF), validate.ErrInvalid)
	})

	t.Run("ErrNotWrappedWithPercentV", func(t *testing.T) {
		t.Parallel()
		require.NotErrorIs(t, fmt.Errorf("x: %v", err), validate.ErrInvalid)
	})
}

func TestErrors_As(t *testing.T) {
	t.Parallel()

	t.Run("OKThroughWrapping", func(t *testing.T) {
		t.Parallel()
		err := fmt.Errorf("update pool %s: %w", "3c90c3cc", fmt.Errorf("validate: %w", sampleErrors()))
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.Equal(t, sampleErrors(), es)
	})

	t.Run("OKFromValidator", func(t *testing.T) {
		t.Parallel()
		var v validate.Validator
		v.Required("description", "")
		err := fmt.Errorf("create pool: %w", v.Err())
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.Equal(t, validate.Errors{{Field: "description", Rule: validate.RuleRequired, Message: "is required"}}, es)
	})

	t.Run("ErrOtherError", func(t *testing.T) {
		t.Parallel()
		var es validate.Errors
		require.False(t, errors.As(fmt.Errorf("x: %w", io.EOF), &es))
	})
}

func TestErrors_Fields(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		es   validate.Errors
		want []string
	}{
		{"Nil", nil, []string{}},
		{"OrderKeptDuplicatesDropped", sampleErrors(), []string{"name", "type"}},
		{
			"Indexed",
			validate.Errors{
				{Field: "items[3].contact_uuid"}, {Field: "items[3].payload"}, {Field: "items[1].payload"}, {Field: "items[3].payload"},
			},
			[]string{"items[3].contact_uuid", "items[3].payload", "items[1].payload"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.es.Fields())
		})
	}
}

func TestErrors_Has(t *testing.T) {
	t.Parallel()

	es := sampleErrors()
	require.True(t, es.Has("name"))
	require.True(t, es.Has("type"))
	require.False(t, es.Has("description"))
	require.False(t, es.Has("Name"), "field names are compared exactly")
	require.False(t, es.Has(""))
	require.False(t, validate.Errors(nil).Has("name"))
}

func TestErrors_MarshalJSON(t *testing.T) {
	t.Parallel()

	b, err := json.Marshal(sampleErrors()[:2])
	require.NoError(t, err)
	require.JSONEq(t, `[
		{"field":"name","rule":"length","message":"must be between 3 and 255 characters (got 2)"},
		{"field":"type","rule":"enum","message":"must be one of FIFO, LIFO, Parallel (got \"Random\")"}
	]`, string(b))
}
