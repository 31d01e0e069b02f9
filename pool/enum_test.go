package pool_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

func TestTypes(t *testing.T) {
	t.Parallel()

	require.Equal(t, []pool.Type{"FIFO", "LIFO", "Parallel"}, pool.Types())
	require.Equal(t, pool.Type("FIFO"), pool.FIFO)
	require.Equal(t, pool.Type("LIFO"), pool.LIFO)
	require.Equal(t, pool.Type("Parallel"), pool.Parallel)
	for _, typ := range pool.Types() {
		require.True(t, typ.Valid(), "%s", typ)
		require.Equal(t, string(typ), typ.String())
	}
}

func TestType_Valid(t *testing.T) {
	t.Parallel()

	for _, s := range []string{"", "fifo", "Lifo", "PARALLEL", "FIFO ", "Random"} {
		require.False(t, pool.Type(s).Valid(), "%q is not canonical", s)
	}
}

func TestParseType(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in     string
		want   pool.Type
		wantOK bool
	}{
		{"FIFO", pool.FIFO, true},
		{"fifo", pool.FIFO, true},
		{"Fifo", pool.FIFO, true},
		{"LIFO", pool.LIFO, true},
		{"lifo", pool.LIFO, true},
		{"Parallel", pool.Parallel, true},
		{"pArAlLeL", pool.Parallel, true},
		{"PARALLEL", pool.Parallel, true},
		{"", "", false},
		{"Random", "Random", false},
		{"FIFO ", "FIFO ", false},
		{" fifo", " fifo", false},
		{"FIF", "FIF", false},
		{"Parallels", "Parallels", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := pool.ParseType(tt.in)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
			require.Equal(t, ok, got.Valid())
		})
	}
}

func TestType_Serial(t *testing.T) {
	t.Parallel()

	require.True(t, pool.FIFO.Serial())
	require.True(t, pool.LIFO.Serial())
	require.False(t, pool.Parallel.Serial())
}

func TestType_UnmarshalJSON(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    pool.Type
		wantErr bool
	}{
		{"OKCanonical", `"Parallel"`, pool.Parallel, false},
		{"OKCanonicalizesCase", `"fifo"`, pool.FIFO, false},
		{"OKCanonicalizesMixedCase", `"pArAlLeL"`, pool.Parallel, false},
		{"OKKeepsUnknown", `"Random"`, "Random", false},
		{"OKKeepsTrailingSpace", `"LIFO "`, "LIFO ", false},
		{"OKEmpty", `""`, "", false},
		{"OKEscaped", `"\u0066ifo"`, pool.FIFO, false},
		{"ErrNumber", `42`, "", true},
		{"ErrBool", `true`, "", true},
		{"ErrObject", `{"type":"FIFO"}`, "", true},
		{"ErrArray", `["FIFO"]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got pool.Type
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("OKMarshalsAsString", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(pool.Parallel)
		require.NoError(t, err)
		require.Equal(t, `"Parallel"`, string(b))
	})

	t.Run("ErrUnknownReportedByValidation", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":"abc","description":"d","type":"Random"}`), &p))
		requireFieldRules(t, p.Validate(), map[string]string{"type": validate.RuleEnum})
	})

	t.Run("ErrNumberInParams", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		err := json.Unmarshal([]byte(`{"name":"abc","description":"d","type":1}`), &p)
		require.Error(t, err)
		var u pool.UpdateParams
		require.Error(t, json.Unmarshal([]byte(`{"type":1}`), &u))
	})
}

func TestStatuses(t *testing.T) {
	t.Parallel()

	require.Equal(t, []pool.Status{
		"Pending", "Processing", "In_Call", "Retrying", "Scheduled", "Completed", "Failed", "Skipped",
	}, pool.Statuses())

	// The constants have the API's exact spellings.
	require.Equal(t, pool.Status("Pending"), pool.StatusPending)
	require.Equal(t, pool.Status("Processing"), pool.StatusProcessing)
	require.Equal(t, pool.Status("In_Call"), pool.StatusInCall)
	require.Equal(t, pool.Status("Retrying"), pool.StatusRetrying)
	require.Equal(t, pool.Status("Scheduled"), pool.StatusScheduled)
	require.Equal(t, pool.Status("Completed"), pool.StatusCompleted)
	require.Equal(t, pool.Status("Failed"), pool.StatusFailed)
	require.Equal(t, pool.Status("Skipped"), pool.StatusSkipped)

	for _, s := range pool.Statuses() {
		require.True(t, s.Valid(), "%s", s)
		require.Equal(t, string(s), s.String())
	}
}

func TestStatus_Valid(t *testing.T) {
	t.Parallel()

	for _, s := range []string{"", "pending", "IN_CALL", "InCall", "In Call", "Done", "Pending "} {
		require.False(t, pool.Status(s).Valid(), "%q is not canonical", s)
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in     string
		want   pool.Status
		wantOK bool
	}{
		{"Pending", pool.StatusPending, true},
		{"pending", pool.StatusPending, true},
		{"PROCESSING", pool.StatusProcessing, true},
		{"In_Call", pool.StatusInCall, true},
		{"in_call", pool.StatusInCall, true},
		{"IN_CALL", pool.StatusInCall, true},
		{"retrying", pool.StatusRetrying, true},
		{"sCHEDULED", pool.StatusScheduled, true},
		{"completed", pool.StatusCompleted, true},
		{"FAILED", pool.StatusFailed, true},
		{"skipped", pool.StatusSkipped, true},
		{"", "", false},
		{"InCall", "InCall", false},
		{"In Call", "In Call", false},
		{"Done", "Done", false},
		{" Pending", " Pending", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := pool.ParseStatus(tt.in)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
			require.Equal(t, ok, got.Valid())
		})
	}
}

func TestStatus_Partition(t *testing.T) {
	t.Parallel()

	waiting := []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled}
	inFlight := []pool.Status{pool.StatusProcessing, pool.StatusInCall}
	terminal := []pool.Status{pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped}

	for _, s := range pool.Statuses() {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			n := 0
			for _, b := range []bool{s.Waiting(), s.InFlight(), s.Terminal()} {
				if b {
					n++
				}
			}
			require.Equal(t, 1, n, "%s must be in exactly one of waiting, in flight, terminal", s)
			require.Equal(t, slices.Contains(waiting, s), s.Waiting())
			require.Equal(t, slices.Contains(inFlight, s), s.InFlight())
			require.Equal(t, slices.Contains(terminal, s), s.Terminal())
		})
	}

	t.Run("UnknownInNone", func(t *testing.T) {
		t.Parallel()
		for _, s := range []pool.Status{"", "Done", "pending"} {
			require.False(t, s.Waiting() || s.InFlight() || s.Terminal(), "%q", s)
		}
	})
}

func TestStatus_UnmarshalJSON(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    pool.Status
		wantErr bool
	}{
		{"OKCanonical", `"In_Call"`, pool.StatusInCall, false},
		{"OKCanonicalizesCase", `"in_call"`, pool.StatusInCall, false},
		{"OKCanonicalizesUpper", `"FAILED"`, pool.StatusFailed, false},
		{"OKKeepsUnknown", `"Done"`, "Done", false},
		{"OKEmpty", `""`, "", false},
		{"ErrNumber", `7`, "", true},
		{"ErrBool", `false`, "", true},
		{"ErrArray", `[]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got pool.Status
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr {
				require.Error(t, err)
				var typeErr *json.UnmarshalTypeError
				require.ErrorAs(t, err, &typeErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("ErrUnknownReportedByValidation", func(t *testing.T) {
		t.Parallel()
		var q pool.ItemQuery
		require.NoError(t, json.Unmarshal([]byte(`{"status":"Done"}`), &q))
		require.Equal(t, pool.Status("Done"), q.Status)
		_, err := q.Normalize()
		requireFieldRules(t, err, map[string]string{"status": validate.RuleEnum})
	})

	t.Run("OKInItem", func(t *testing.T) {
		t.Parallel()
		var it pool.Item
		require.NoError(t, json.Unmarshal([]byte(`{"status":"retrying"}`), &it))
		require.Equal(t, pool.StatusRetrying, it.Status)
	})

	t.Run("ErrNumberInQuery", func(t *testing.T) {
		t.Parallel()
		var q pool.ItemQuery
		require.Error(t, json.Unmarshal([]byte(`{"status":3}`), &q))
	})
}
