package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/poolq/poolq/pool"
)

// TestListedUpToALimit_MixedBadElements: the package doc says "past 20 bad
// elements, the rest are counted against the list", and that one 422
// reports every failing field at once. A list whose first 21 elements are
// of the wrong type and whose 22nd is a malformed UUID has 22 bad elements:
// 20 listed, 2 counted. The malformed one must not vanish because the
// wrong-type count was added against the list's own name (rule "type"),
// which makes decode drop the whole list before its UUIDs are parsed.
func TestListedUpToALimit_MixedBadElements(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, path string }{
		{"contacts", "/contacts"},
		{"dnc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			path := "/api/v1/dnc"
			if tc.path != "" {
				p := b.createPool("Renewals", pool.FIFO, 1)
				path = "/api/v1/pools/" + p.UUID.String() + tc.path
			}
			bad := make([]any, 0, maxListedErrors+2)
			for range maxListedErrors + 1 {
				bad = append(bad, 7) // not a string
			}
			bad = append(bad, "nope") // a string, not a UUID
			res := b.do("POST", path, map[string]any{"contact_uuids": bad})
			requireError(t, res, 422, CodeValidation)
			details := res.Env.Error.Details
			listedN := len(regexp.MustCompile(`contact_uuids\[\d+\]:`).FindAllString(details, -1))
			counted := 0
			for _, m := range regexp.MustCompile(`(\d+) more [a-zA-Z ]+ not listed`).FindAllStringSubmatch(details, -1) {
				n, _ := strconv.Atoi(m[1])
				counted += n
			}
			if listedN+counted != len(bad) {
				t.Fatalf("%d bad elements, the 422 lists %d and counts %d more: %s", len(bad), listedN, counted, details)
			}
		})
	}
}
