package campaign

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Clock is a time of day, in minutes after midnight (0 to 1439). It is
// written "HH:MM" on input and marshalled "HH:MM:SS", as the API does.
type Clock int

// MinutesPerDay is one past the largest Clock.
const MinutesPerDay = 24 * 60

// ParseClock reads "HH:MM" (24 hours, two digits each) or "HH:MM:SS" with
// zero seconds: the form the API reads back, so that a rule read can be
// sent again.
func ParseClock(s string) (Clock, error) {
	hm, sec, hasSec := strings.Cut(s, ":")
	if len(hm) != 2 {
		return 0, fmt.Errorf("must be a time of day HH:MM (got %q)", s)
	}
	mm := sec
	if hasSec {
		mm, sec, hasSec = strings.Cut(sec, ":")
	}
	h, herr := strconv.Atoi(hm)
	m, merr := strconv.Atoi(mm)
	if !hasSec {
		sec = "00"
	}
	if herr != nil || merr != nil || len(mm) != 2 || sec != "00" || h < 0 || h > 23 || m < 0 || m > 59 || hm[0] == '+' || mm[0] == '+' {
		return 0, fmt.Errorf("must be a time of day HH:MM, 00:00 to 23:59 (got %q)", s)
	}
	return Clock(h*60 + m), nil
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
