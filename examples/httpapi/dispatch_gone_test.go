package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// afterCommitStore runs hook once, after the first write that commits
// once armed, before the write returns to the engine.
type afterCommitStore struct {
	store.Store
	armed atomic.Bool
	hook  func()
}

func (s *afterCommitStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Write(ctx, fn)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		s.hook()
	}
	return err
}

// readsListener hands out connections that report on reads what the
// server read from them.
type readsListener struct {
	net.Listener
	reads chan []byte
}

func (l readsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return readsConn{Conn: c, reads: l.reads}, nil
}

type readsConn struct {
	net.Conn
	reads chan []byte
}

func (c readsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		select {
		case c.reads <- append([]byte(nil), p[:n]...):
		default:
		}
	}
	return n, err
}

// TestDispatch_ClientGoneBeforeTheAnswer: a client that is gone when its
// claim's answer is written (the write fails) never sees the lease; the
// server gives it back, unattempted, rather than let it expire as a failed
// attempt of a contact nobody called.
//
// The request context does not say so here: the client pipelined its next
// request before it left, and net/http stops watching a connection for
// its end once it has read the next request's first byte. Only the failed
// write tells. It is made certain with a Unix socket, whose writes fail
// (EPIPE) as soon as the peer has closed, where a TCP write may be taken by
// the kernel before the peer's reset arrives.
func TestDispatch_ClientGoneBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	var hooked *afterCommitStore
	b := setupOver(t, func(s store.Store) store.Store { hooked = &afterCommitStore{Store: s}; return hooked })
	p := b.createPool("Gone", pool.FIFO, 1)
	c := b.addContacts(p.UUID, 1, 0)[0]

	dir, err := os.MkdirTemp("", "pq") // short: a socket's path has a small bound
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	require.NoError(t, err)
	reads := make(chan []byte, 64)
	ts := httptest.NewUnstartedServer(b.srv)
	ts.Listener = readsListener{Listener: ln, reads: reads}
	ts.Start()
	t.Cleanup(ts.Close)

	conn, err := net.Dial("unix", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	// The claim commits; before its answer is written, the client sends
	// the first bytes of its next request, the server reads one (the
	// background read of net/http, which then stops), and the client
	// closes the connection.
	claimed, answer := make(chan struct{}), make(chan struct{})
	letAnswer := sync.OnceFunc(func() { close(answer) })
	t.Cleanup(letAnswer) // before ts.Close, should the test stop early
	hooked.hook = func() {
		close(claimed)
		<-answer
	}
	hooked.armed.Store(true)
	_, err = conn.Write([]byte("POST /api/v1/pools/" + p.UUID.String() + "/dispatch HTTP/1.1\r\n" +
		"Host: poolq\r\nAuthorization: Bearer " + testToken + "\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err)
	select {
	case <-claimed:
	case <-time.After(30 * time.Second):
		t.Fatal("the claim did not commit")
	}
	require.Equal(t, pool.StatusProcessing, b.item(p.UUID, c).Status, "claimed")
	_, err = conn.Write([]byte("GET /api/v1/pools HTTP/1.1\r\n"))
	require.NoError(t, err)
	for read := false; !read; {
		select {
		case got := <-reads:
			read = string(got) == "G"
		case <-time.After(30 * time.Second):
			t.Fatal("the server did not read the next request's first byte")
		}
	}
	require.NoError(t, conn.Close())
	letAnswer()
	ts.Close() // waits for the claim's handler

	it := b.item(p.UUID, c)
	require.Equal(t, pool.StatusPending, it.Status, "the lease nobody will settle is given back")
	require.Zero(t, it.Attempts, "the attempt is not counted")
}

// TestDispatch_AnswerHasContentLength: a claim's answer, sent before its
// handler returns (to learn whether it could be), carries its length, not
// chunks: a client that gets part of it knows it was cut short, and one
// that gets all of it needs nothing more from the connection.
func TestDispatch_AnswerHasContentLength(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Length", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)
	ts := httptest.NewServer(b.srv)
	t.Cleanup(ts.Close)

	req, err := http.NewRequest("POST", ts.URL+"/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	require.Empty(t, res.TransferEncoding)
	require.Equal(t, int64(len(body)), res.ContentLength)
}
