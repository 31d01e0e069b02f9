package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/leakcheck"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary run main instead of the tests: the tests
// below start the real program that way, as a child process, without a
// separate build.
const runMainEnv = "HTTPAPI_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	leakcheck.Main(m) // fails a run that left a store open
}

func TestParse(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	var out bytes.Buffer

	c, err := parse(nil, &out, env(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.addr)
	require.Equal(t, "poolq-httpapi.db", c.db)
	require.Equal(t, "random", c.tokenFrom)
	require.GreaterOrEqual(t, len(c.token), 26, "crypto/rand.Text: 130 bits")
	c2, err := parse(nil, &out, env(nil))
	require.NoError(t, err)
	require.NotEqual(t, c.token, c2.token)

	c, err = parse(nil, &out, env(map[string]string{"POOLQ_TOKEN": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, "from-env", c.token)
	require.Equal(t, "env", c.tokenFrom)

	c, err = parse([]string{"-addr", ":0", "-db", "x.db", "-token", "from-flag"}, &out, env(map[string]string{"POOLQ_TOKEN": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, config{addr: ":0", db: "x.db", token: "from-flag", tokenFrom: "flag"}, c, "the flag wins")

	// A token is trimmed, as the server trims the one a client presents
	// (a secret file's newline); a blank one is refused.
	c, err = parse(nil, &out, env(map[string]string{"POOLQ_TOKEN": "s3cret\n"}))
	require.NoError(t, err)
	require.Equal(t, "s3cret", c.token)
	c, err = parse([]string{"-token", " s3cret "}, &out, env(nil))
	require.NoError(t, err)
	require.Equal(t, "s3cret", c.token)
	_, err = parse([]string{"-token", " "}, &out, env(map[string]string{"POOLQ_TOKEN": "from-env"}))
	require.ErrorContains(t, err, "-token is blank")
	_, err = parse(nil, &out, env(map[string]string{"POOLQ_TOKEN": "\n"}))
	require.ErrorContains(t, err, "$POOLQ_TOKEN is blank")
	// Empty is blank too: -token "$SECRET", or POOLQ_TOKEN=$SECRET, with
	// SECRET unset, is refused, not served with a token no client has.
	for _, m := range []map[string]string{nil, {"POOLQ_TOKEN": "from-env"}} {
		_, err = parse([]string{"-token", ""}, &out, env(m))
		require.ErrorContains(t, err, "-token is blank", "POOLQ_TOKEN %v", m)
	}
	_, err = parse(nil, &out, env(map[string]string{"POOLQ_TOKEN": ""}))
	require.ErrorContains(t, err, "$POOLQ_TOKEN is blank")

	_, err = parse([]string{"-port", "80"}, &out, env(nil))
	require.Error(t, err)
	_, err = parse([]string{"extra"}, &out, env(nil))
	require.ErrorContains(t, err, "unexpected arguments")
	_, err = parse([]string{"-h"}, &out, env(nil))
	require.ErrorIs(t, err, flag.ErrHelp)
}

// child is the program running in a child process.
type child struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	mu   sync.Mutex
	out  bytes.Buffer // stdout and stderr
	done chan struct{}
	err  error // of Wait, once done
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// startChild runs the program with args and env on a free port, and waits
// until it says where it listens. It is killed when the test ends, if it
// still runs.
func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	c := &child{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	c.cmd.Env = append(append(os.Environ(), runMainEnv+"=1", "POOLQ_TOKEN="), env...)
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})

	// The banner: "listening on <base>", the token, then the sample curl,
	// whose --data line ends it.
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`listening on (http://\S+)`)
		var base string
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				base = m[1]
			}
			if base != "" && strings.Contains(sc.Text(), "--data") {
				listening <- base
			}
		}
	}()
	select {
	case c.base = <-listening:
	case <-c.done:
		t.Fatalf("the server exited: %v\n%s", c.err, c.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not start:\n%s", c.output())
	}
	return c
}

// wait waits for the child to exit and returns its exit error.
func (c *child) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		t.Fatalf("the server did not exit within %v:\n%s", d, c.output())
		return nil
	}
}

// curlCommand is a curl command line: the reference pages' and the banner's.
type curlCommand struct {
	method, url string
	headers     []string
	data        string
}

// parseCurl reads the first curl command in text (its lines joined by
// backslash-newline, words quoted by the shell's rules for ' and ") and
// returns it with the text after it.
func parseCurl(t *testing.T, text string) (curlCommand, string) {
	t.Helper()
	i := strings.Index(text, "curl ")
	require.GreaterOrEqual(t, i, 0, "no curl command in:\n%s", text)
	var (
		words []string
		word  strings.Builder
		in    bool // a word is being read
		rest  string
	)
	flush := func() {
		if in {
			words = append(words, word.String())
			word.Reset()
			in = false
		}
	}
	s := text[i:]
scan:
	for j := 0; j < len(s); j++ {
		switch ch := s[j]; {
		case ch == '\\' && j+1 < len(s) && s[j+1] == '\n':
			j++ // a continuation line
		case ch == '\n':
			rest = s[j+1:]
			break scan
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(s[j+1:], ch)
			require.GreaterOrEqual(t, end, 0, "unterminated quote in the curl command")
			word.WriteString(s[j+1 : j+1+end])
			in = true
			j += end + 1
		default:
			word.WriteByte(ch)
			in = true
		}
	}
	flush()

	require.Equal(t, "curl", words[0])
	var c curlCommand
	for k := 1; k < len(words); k += 2 {
		require.Less(t, k+1, len(words), "option %s has no value", words[k])
		switch v := words[k+1]; words[k] {
		case "--request":
			c.method = v
		case "--url":
			c.url = v
		case "--header":
			c.headers = append(c.headers, v)
		case "--data":
			c.data = v
		default:
			t.Fatalf("unexpected curl option %s", words[k])
		}
	}
	return c, rest
}

// request builds the HTTP request of a curl command, with replace applied to
// its URL and headers (the pages' placeholders).
func (c curlCommand) request(t *testing.T, replace *strings.Replacer) *http.Request {
	t.Helper()
	req, err := http.NewRequest(c.method, replace.Replace(c.url), strings.NewReader(c.data))
	require.NoError(t, err)
	for _, h := range c.headers {
		k, v, ok := strings.Cut(replace.Replace(h), ": ")
		require.True(t, ok, "header %q", h)
		req.Header.Add(k, v)
	}
	return req
}

// documented reads the example response that follows the curl command on a
// reference page: the first JSON object after it.
func documented(t *testing.T, rest string) map[string]any {
	t.Helper()
	i := strings.Index(rest, "{")
	require.GreaterOrEqual(t, i, 0)
	var m map[string]any
	require.NoError(t, json.NewDecoder(strings.NewReader(rest[i:])).Decode(&m))
	return m
}

// send sends req and decodes the response as a JSON object.
func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "body: %s", body)
	return res.StatusCode, m
}

// requireShape checks that got has the shape of the documented example:
// the same keys in every object, at any depth, and the same JSON types.
func requireShape(t *testing.T, want, got any, path string) {
	t.Helper()
	require.IsType(t, want, got, "%s: JSON type", path)
	if w, ok := want.(map[string]any); ok {
		g := got.(map[string]any)
		require.ElementsMatch(t, keys(w), keys(g), "%s: keys", path)
		for k := range w {
			requireShape(t, w[k], g[k], path+"."+k)
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// requireTimestamp checks an API timestamp: RFC 3339, in UTC.
func requireTimestamp(t *testing.T, v any, field string) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%s is a string", field)
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "%s is RFC 3339", field)
	require.True(t, strings.HasSuffix(s, "Z"), "%s is UTC: %s", field, s)
	return ts
}

// TestServe_ReferenceCurls starts the program and replays the curl requests
// of the reference pages (create a pool, update a pool) exactly as written,
// with only the host, the token and the pool's UUID filled in, then checks
// each response against the page's example, field by field.
func TestServe_ReferenceCurls(t *testing.T) {
	t.Parallel()
	const token = "reference-token-7d2e"
	db := filepath.Join(t.TempDir(), "api.db")
	c := startChild(t, []string{"POOLQ_TOKEN=" + token}, "-db", db)
	require.Contains(t, c.output(), "token: $POOLQ_TOKEN")
	require.NotContains(t, c.output(), token, "a token from the environment is not printed")

	page := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		return string(b)
	}

	// Create.
	create, rest := parseCurl(t, page("create-a-contact-pool.txt"))
	want := documented(t, rest)
	require.Equal(t, "POST", create.method)
	req := create.request(t, strings.NewReplacer("https://{subdomain}.mihu.ai", c.base, "<token>", token))
	status, got := send(t, req)
	require.Equal(t, http.StatusCreated, status, "body: %v", got)
	requireShape(t, want, got, "create")
	require.Equal(t, want["success"], got["success"])
	require.Equal(t, want["message"], got["message"])

	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(create.data), &sent))
	created := got["data"].(map[string]any)
	for k, v := range sent {
		require.Equal(t, v, created[k], "data.%s is what the request sent", k)
	}
	id, err := uuid.Parse(created["uuid"].(string))
	require.NoError(t, err)
	require.Equal(t, 0.0, created["contacts_count"])
	createdAt := requireTimestamp(t, created["created_at"], "created_at")
	require.Equal(t, createdAt, requireTimestamp(t, created["updated_at"], "updated_at"))
	require.WithinDuration(t, time.Now(), createdAt, time.Minute)

	// Update the pool just created.
	update, rest := parseCurl(t, page("update-a-pool.txt"))
	want = documented(t, rest)
	require.Equal(t, "PUT", update.method)
	req = update.request(t, strings.NewReplacer("https://{subdomain}.mihu.ai", c.base, "<token>", token, "{uuid}", id.String()))
	status, got = send(t, req)
	require.Equal(t, http.StatusOK, status, "body: %v", got)
	requireShape(t, want, got, "update")
	require.Equal(t, want["success"], got["success"])
	require.Equal(t, want["message"], got["message"])

	sent = nil
	require.NoError(t, json.Unmarshal([]byte(update.data), &sent))
	updated := got["data"].(map[string]any)
	for k, v := range sent {
		require.Equal(t, v, updated[k], "data.%s is what the request sent", k)
	}
	require.Equal(t, id.String(), updated["uuid"])
	require.Equal(t, created["created_at"], updated["created_at"], "created_at does not move")
	require.False(t, requireTimestamp(t, updated["updated_at"], "updated_at").Before(createdAt))

	// The detail shows the update, and adds status_counts and campaigns.
	req, err = http.NewRequest("GET", c.base+"/api/v1/pools/"+id.String(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	status, got = send(t, req)
	require.Equal(t, http.StatusOK, status, "body: %v", got)
	detail := got["data"].(map[string]any)
	for k, v := range updated {
		require.Equal(t, v, detail[k], "detail.%s", k)
	}
	require.Len(t, detail["status_counts"], len(pool.Statuses()))
	require.Equal(t, []any{}, detail["campaigns"])

	// The same requests with the documented placeholder token are refused.
	req = create.request(t, strings.NewReplacer("https://{subdomain}.mihu.ai", c.base))
	status, got = send(t, req)
	require.Equal(t, http.StatusUnauthorized, status, "body: %v", got)
	require.Equal(t, false, got["success"])
	require.Equal(t, CodeInvalidAuthToken, got["error"].(map[string]any)["code"])
}

// TestServe_BannerCurlAndShutdown starts the program, replays the sample
// curl it prints, then stops it with SIGINT while a claim waits for an
// item: the claim is answered, the program exits 0, and the file holds
// what was written.
func TestServe_BannerCurlAndShutdown(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("stops the server with os.Interrupt, which Windows cannot send to another process: Unix only")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "api.db")
	c := startChild(t, nil, "-db", db, "-token", "flag-token-19ab")
	out := c.output()
	require.Contains(t, out, "token: flag-token-19ab (from -token)")

	sample, _ := parseCurl(t, out[strings.Index(out, "try:"):])
	require.Equal(t, c.base+"/api/v1/pools", sample.url, "the banner's curl targets this server")
	status, got := send(t, sample.request(t, strings.NewReplacer()))
	require.Equal(t, http.StatusCreated, status, "body: %v", got)
	id := got["data"].(map[string]any)["uuid"].(string)

	// A claim waits on the empty pool.
	claimed := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", c.base+"/api/v1/pools/"+id+"/dispatch?wait=30s", nil)
		req.Header.Set("Authorization", "Bearer flag-token-19ab")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("claim: %v", err)
			claimed <- nil
			return
		}
		res.Body.Close()
		claimed <- res
	}()
	time.Sleep(300 * time.Millisecond) // let it reach the wait

	require.NoError(t, c.cmd.Process.Signal(os.Interrupt))
	select {
	case res := <-claimed:
		require.NotNil(t, res)
		require.Equal(t, http.StatusNoContent, res.StatusCode, "the shutdown ends the wait with an answer")
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting claim was not answered")
	}
	require.NoError(t, c.wait(t, 15*time.Second), "exit status; output:\n%s", c.output())
	require.Contains(t, c.output(), "shutting down")

	// The file holds the pool; the program closed it cleanly.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	d, err := eng.Pool(ctx, uuid.MustParse(id))
	require.NoError(t, err)
	require.Equal(t, "VIP customers", d.Name)
	require.Equal(t, "High-value leads, push first", d.Description)
}

// TestServe_BadFlags checks that the program refuses what it cannot serve.
func TestServe_BadFlags(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:99999", "-db", filepath.Join(t.TempDir(), "x.db"))
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "exits with an error: %v\n%s", err, out)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), "httpapi:")
}

// TestMain_FlagExits: -h prints the usage and exits 0; a flag the flag
// package cannot parse exits 2 with the usage, as Go programs' flags do,
// and its message is not repeated as an "httpapi:" error line. Both go to
// stderr, as the flag package's default does, and stdout stays empty: a
// script that reads the server's output (its banner) never reads a usage.
func TestMain_FlagExits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		arg  string
		code int
	}{{"-h", 0}, {"-help", 0}, {"-no-such-flag", 2}, {"-addr", 2}} {
		cmd := exec.Command(os.Args[0], tc.arg)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tc.code, code, "%s: stdout: %s\nstderr: %s", tc.arg, &stdout, &stderr)
		require.Empty(t, stdout.String(), "%s: stdout", tc.arg)
		require.Contains(t, stderr.String(), "Usage of httpapi", tc.arg)
		require.NotContains(t, stderr.String(), "httpapi: flag", tc.arg)
	}
}
