// Package jsonenc marshals poolq's JSON forms without HTML escaping.
//
// The MarshalJSON methods of poolq's types write their values through
// Marshal rather than json.Marshal, so that the caller's encoder decides
// whether <, > and & are escaped: json.Marshal of a value escapes them
// (encoding/json escapes what a Marshaler returns), an Encoder with
// SetEscapeHTML(false) does not. Had the methods escaped them themselves,
// a payload of "<" characters would be six times its size on every
// encoder's wire, whatever the caller asked for.
package jsonenc

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
