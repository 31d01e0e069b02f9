package pool

import (
	"archive/zip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/poolq/poolq/validate"
)

// ErrUnknownZone is returned (wrapped, with the name) by [LoadZone] for a
// name that is not a zone of the embedded database.
var ErrUnknownZone = errors.New("unknown time zone")

// zoneinfoZip is the IANA time zone database, tzdata release 2025c, as Go
// 1.26 ships it: $(go env GOROOT)/lib/time/zoneinfo.zip, built by that
// directory's update.bash (CODE=2025c DATA=2025c) with backzone's
// pre-1970 history, one uncompressed TZif file per zone name. To move to a
// newer release, copy the file of a newer Go (or run its update.bash) and
// change the release named here and in [LoadZone].
//
// poolq embeds its own copy rather than relying on time.LoadLocation and
// time/tzdata: LoadLocation reads the host's /usr/share/zoneinfo first and
// falls back to time/tzdata only when the host has no file, so two hosts
// with different releases (or one host with none) would compute different
// calling windows for the same contact.
//
//go:embed zoneinfo.zip
var zoneinfoZip string

// zoneFiles indexes the embedded archive by zone name, once.
var zoneFiles = sync.OnceValues(func() (map[string]*zip.File, error) {
	r, err := zip.NewReader(strings.NewReader(zoneinfoZip), int64(len(zoneinfoZip)))
	if err != nil {
		return nil, fmt.Errorf("embedded zoneinfo.zip: %w", err)
	}
	files := make(map[string]*zip.File, len(r.File))
	for _, f := range r.File {
		if !f.FileInfo().IsDir() {
			files[f.Name] = f
		}
	}
	return files, nil
})

// zoneCache holds the locations LoadZone has loaded, by name. Only valid
// names are kept, so it holds at most the archive's ~600 zones.
var zoneCache struct {
	sync.RWMutex
	m map[string]*time.Location
}

// LoadZone returns the IANA time zone name ("America/New_York",
// "Pacific/Chatham", "UTC") from the zone database poolq embeds, tzdata
// release 2025c, whatever the host has installed: the same name gives the
// same offsets on every machine, and the same answers as [ValidTimeZone].
//
// Names are case-sensitive, as IANA's are. "UTC" returns [time.UTC]. ""
// and "Local" (which time.LoadLocation reads as UTC and the host's zone)
// are not zone names here, and like any name missing from the database
// they return an error wrapping [ErrUnknownZone].
//
// The first call for a name reads and parses its zone file; the location
// is then kept, so later calls return the same *time.Location without
// allocating. Safe for concurrent use.
func LoadZone(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	zoneCache.RLock()
	loc, ok := zoneCache.m[name]
	zoneCache.RUnlock()
	if ok {
		return loc, nil
	}
	files, err := zoneFiles()
	if err != nil {
		return nil, fmt.Errorf("load zone %s: %w", validate.Quote(name), err)
	}
	f, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("load zone %s: %w", validate.Quote(name), ErrUnknownZone)
	}
	data, err := readZipFile(f)
	if err != nil {
		return nil, fmt.Errorf("load zone %s: %w", validate.Quote(name), err)
	}
	loc, err = time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("load zone %s: %w", validate.Quote(name), err)
	}
	// Two first calls may race: both parse, the first stored is kept and
	// returned to both.
	zoneCache.Lock()
	defer zoneCache.Unlock()
	if kept, ok := zoneCache.m[name]; ok {
		return kept, nil
	}
	if zoneCache.m == nil {
		zoneCache.m = make(map[string]*time.Location)
	}
	zoneCache.m[name] = loc
	return loc, nil
}

// readZipFile returns the contents of f.
func readZipFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
