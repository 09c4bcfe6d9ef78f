// capture runs a few real HashiCorp memberlist nodes on loopback and records every UDP packet
// and TCP stream they receive, as hex, one per line. Rumor's wire tests decode these bytes.
//
// Regenerate the fixtures (from the repository root):
//
//	cd tests/interop/capture && GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/capture . && \
//	  /tmp/capture ../../../Tests/RumorWireTests/Fixtures
package main

import (
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

type recorder struct {
	mu      sync.Mutex
	packets []string
	streams []string
}

func (r *recorder) packet(b []byte) {
	r.mu.Lock()
	r.packets = append(r.packets, hex.EncodeToString(b))
	r.mu.Unlock()
}

func (r *recorder) stream(b []byte) {
	if len(b) == 0 {
		return
	}
	r.mu.Lock()
	r.streams = append(r.streams, hex.EncodeToString(b))
	r.mu.Unlock()
}

// recordingTransport wraps memberlist's NetTransport and records what arrives.
type recordingTransport struct {
	*memberlist.NetTransport
	rec     *recorder
	packets chan *memberlist.Packet
	streams chan net.Conn
}

func newRecordingTransport(port int, rec *recorder) *recordingTransport {
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: port})
	if err != nil {
		log.Fatal(err)
	}
	t := &recordingTransport{NetTransport: inner, rec: rec, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn)}
	go func() {
		for p := range inner.PacketCh() {
			rec.packet(p.Buf)
			t.packets <- p
		}
	}()
	go func() {
		for c := range inner.StreamCh() {
			t.streams <- &recordingConn{Conn: c, rec: rec}
		}
	}()
	return t
}

func (t *recordingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *recordingTransport) StreamCh() <-chan net.Conn           { return t.streams }

// recordingConn records the bytes read from an accepted stream.
type recordingConn struct {
	net.Conn
	rec  *recorder
	mu   sync.Mutex
	read []byte
	once sync.Once
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read = append(c.read, b[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.rec.stream(c.read)
		c.mu.Unlock()
	})
	return c.Conn.Close()
}

type userDelegate struct{ meta string }

func (d userDelegate) NodeMeta(limit int) []byte                  { return []byte(d.meta) }
func (d userDelegate) NotifyMsg([]byte)                           {}
func (d userDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d userDelegate) LocalState(join bool) []byte                { return []byte("state-of-" + d.meta) }
func (d userDelegate) MergeRemoteState(buf []byte, join bool)     {}

func node(name string, port int, compression bool, rec *recorder) *memberlist.Memberlist {
	config := memberlist.DefaultLocalConfig()
	config.Name = name
	config.BindAddr = "127.0.0.1"
	config.BindPort = port
	config.AdvertiseAddr = "127.0.0.1"
	config.AdvertisePort = port
	config.EnableCompression = compression
	config.ProbeInterval = 200 * time.Millisecond
	config.ProbeTimeout = 100 * time.Millisecond
	config.GossipInterval = 50 * time.Millisecond
	config.Transport = newRecordingTransport(port, rec)
	config.Delegate = userDelegate{meta: name}
	config.LogOutput = os.Stderr
	list, err := memberlist.Create(config)
	if err != nil {
		log.Fatal(err)
	}
	return list
}

// scenario: a and b meet, c joins then crashes (suspect, dead), b sends user messages, b leaves.
func scenario(base int, compression bool) *recorder {
	rec := &recorder{}
	a := node("alpha", base, compression, rec)
	b := node("bravo", base+1, compression, rec)
	if _, err := b.Join([]string{fmt.Sprintf("127.0.0.1:%d", base)}); err != nil {
		log.Fatal(err)
	}
	c := node("charlie", base+2, compression, rec)
	if _, err := c.Join([]string{fmt.Sprintf("127.0.0.1:%d", base)}); err != nil {
		log.Fatal(err)
	}
	time.Sleep(1 * time.Second)
	for _, m := range a.Members() {
		if m.Name == "alpha" {
			b.SendBestEffort(m, []byte("hello over udp"))
			b.SendReliable(m, []byte("hello over tcp"))
		}
	}
	c.Shutdown() // a crash: no leave
	time.Sleep(3 * time.Second)
	b.Leave(time.Second)
	time.Sleep(500 * time.Millisecond)
	b.Shutdown()
	a.Shutdown()
	return rec
}

func write(path string, lines []string) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: capture OUTPUT_DIR")
	}
	dir := os.Args[1]
	compressed := scenario(47100, true)
	plain := scenario(47200, false)
	write(filepath.Join(dir, "go-packets-compressed.hex"), compressed.packets)
	write(filepath.Join(dir, "go-streams-compressed.hex"), compressed.streams)
	write(filepath.Join(dir, "go-packets-plain.hex"), plain.packets)
	write(filepath.Join(dir, "go-streams-plain.hex"), plain.streams)
	log.Printf("captured %d+%d packets, %d+%d streams", len(compressed.packets), len(plain.packets), len(compressed.streams), len(plain.streams))
}
