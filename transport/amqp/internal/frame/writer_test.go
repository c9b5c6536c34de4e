package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// loopback returns both ends of a TCP connection on 127.0.0.1.
func loopback(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestWriteBehindKeepsEachWritersOrder(t *testing.T) {
	client, server := loopback(t)
	w := newWriteBehind(client)
	const writers, records = 8, 2000
	got := make(chan [writers]uint32, 1)
	go func() {
		var next [writers]uint32
		rec := make([]byte, 8)
		for {
			if _, err := io.ReadFull(server, rec); err != nil {
				got <- next
				return
			}
			who, n := binary.BigEndian.Uint32(rec), binary.BigEndian.Uint32(rec[4:])
			if who >= writers || n != next[who] {
				t.Errorf("writer %d: record %d came where %d was due", who, n, next[who%writers])
				got <- next
				return
			}
			next[who]++
		}
	}()
	var wg sync.WaitGroup
	for who := range uint32(writers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range uint32(records) {
				rec := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, who), n)
				if _, err := w.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for who, n := range <-got {
		if n != records {
			t.Errorf("writer %d: %d of %d records arrived", who, n, records)
		}
	}
}

// gatedConn blocks its first Write until gate is closed, and counts writes.
type gatedConn struct {
	net.Conn
	gate    chan struct{}
	started chan struct{}
	mu      sync.Mutex
	writes  int
	written bytes.Buffer
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	first := c.writes == 1
	c.written.Write(p)
	c.mu.Unlock()
	if first {
		close(c.started)
		<-c.gate
	}
	return len(p), nil
}

func (c *gatedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *gatedConn) Close() error                     { return nil }

func TestWriteBehindGathersWritesMadeDuringAWrite(t *testing.T) {
	c := &gatedConn{gate: make(chan struct{}), started: make(chan struct{})}
	w := newWriteBehind(c)
	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	<-c.started // the writer is inside its first socket write
	for _, s := range []string{"b", "c", "d", "e"} {
		// Returns at once although a write is in progress: no lock is held across it.
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	close(c.gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c.writes != 2 || c.written.String() != "abcde" {
		t.Fatalf("got %d writes of %q, want 2 writes of \"abcde\" (the four queued during the first go out together)", c.writes, c.written.String())
	}
}

func TestWriteBehindCloseWritesWhatIsPending(t *testing.T) {
	client, server := loopback(t)
	w := newWriteBehind(client)
	want := bytes.Repeat([]byte("hypha"), 10000)
	for i := 0; i < len(want); i += 1000 {
		if _, err := w.Write(want[i:min(i+1000, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		read <- b
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-read; !bytes.Equal(got, want) {
		t.Fatalf("peer read %d bytes, want %d", len(got), len(want))
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

func TestWriteBehindBlocksWhenThePeerStopsReadingAndCloseEndsIt(t *testing.T) {
	client, server := net.Pipe() // synchronous: a write waits for a read that never comes
	defer server.Close()
	w := newWriteBehind(client)
	blocked := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				blocked <- err
				return
			}
		}
	}()
	select {
	case err := <-blocked:
		t.Fatalf("Write kept returning until %v; it should block once maxPending bytes wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	if err := w.Close(); err == nil {
		t.Log("Close returned nil")
	}
	if d := time.Since(start); d > 10*closeFlushTimeout {
		t.Fatalf("Close took %s with a peer that does not read", d)
	}
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the blocked Write returned %v, want net.ErrClosed", err)
	}
}

func TestWriteBehindFailsWritesAfterTheConnectionBreaks(t *testing.T) {
	client, server := loopback(t)
	w := newWriteBehind(client)
	server.Close()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_, err = w.Write(make([]byte, 4096))
		if err == nil {
			time.Sleep(time.Millisecond)
		}
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	// The connection itself is closed, so that a reader on it fails too.
	if _, rerr := client.Read(make([]byte, 1)); rerr == nil {
		t.Fatal("reading the connection after a failed write succeeded")
	}
	if cerr := w.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		t.Fatalf("Close after a failed write: %v", cerr)
	}
}
