package jsonenc_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/internal/jsonenc"
)

func TestMarshal(t *testing.T) {
	v := map[string]any{"html": "<b>Tom & Jerry</b>", "raw": json.RawMessage(`{ "x" : "<" }`)}
	b, err := jsonenc.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, `{"html":"<b>Tom & Jerry</b>","raw":{"x":"<"}}`, string(b), "compact, not escaped, no newline")
	escaped, err := json.Marshal(v)
	require.NoError(t, err)
	require.JSONEq(t, string(escaped), string(b))

	_, err = jsonenc.Marshal(make(chan int))
	var unsupported *json.UnsupportedTypeError
	require.ErrorAs(t, err, &unsupported)
}
