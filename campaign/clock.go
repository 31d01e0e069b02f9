package campaign

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/poolq/poolq/validate"
)

// Clock is a time of day, in minutes after midnight (0 to 1439). It is
// written "HH:MM" on input and marshalled "HH:MM:SS", as the API does.
type Clock int

// MinutesPerDay is one past the largest Clock.
const MinutesPerDay = 24 * 60

// ParseClock reads "HH:MM" (24 hours, exactly two ASCII digits each) or
// "HH:MM:SS" with seconds "00": the form the API reads back, so that a
// rule read can be sent again. Nothing else is read: no sign, no space,
// no single digit.
func ParseClock(s string) (Clock, error) {
	hh, rest, _ := strings.Cut(s, ":")
	mm, ss, hasSec := strings.Cut(rest, ":")
	h, hok := twoDigits(hh)
	m, mok := twoDigits(mm)
	if !hok || !mok || hasSec && ss != "00" || h > 23 || m > 59 {
		return 0, fmt.Errorf("must be a time of day HH:MM, 00:00 to 23:59 (got %s)", validate.Quote(s))
	}
	return Clock(h*60 + m), nil
}

// twoDigits reads s, exactly two ASCII digits.
func twoDigits(s string) (int, bool) {
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// String returns "HH:MM:SS".
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d:00", int(c)/60, int(c)%60) }

// MarshalJSON writes "HH:MM:SS".
func (c Clock) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads "HH:MM" or "HH:MM:SS".
func (c *Clock) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseClock(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
