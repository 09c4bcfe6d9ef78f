// Prints the golden bytes of Tests/RumorWireTests/SerfCoordinateCodecTests.swift: Serf ack
// payloads (version byte + go-msgpack coordinate) of a fresh and a sample coordinate, and the
// coordinate after each of six updates of a client. Run (Debian golang-github-hashicorp-serf-dev):
//   mkdir -p /tmp/g/src/golden && cp main.go /tmp/g/src/golden/ &&
//   GOPATH=/usr/share/gocode:/tmp/g GO111MODULE=off go run golden
package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	"github.com/hashicorp/serf/coordinate"
)

func enc(c *coordinate.Coordinate) []byte {
	var buf bytes.Buffer
	buf.Write([]byte{1})
	codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(c)
	return buf.Bytes()
}

func main() {
	cfg := coordinate.DefaultConfig()
	fresh := coordinate.NewCoordinate(cfg)
	fmt.Printf("fresh %x\n", enc(fresh))
	c := &coordinate.Coordinate{Vec: []float64{0.001, -0.002, 0.5, 0, 0, 0, 0, 1e-9}, Error: 0.75, Adjustment: -0.0001, Height: 0.00002}
	fmt.Printf("sample %x\n", enc(c))
	// Trajectory: client starts at a non-origin point, peers fixed.
	cl, _ := coordinate.NewClient(cfg)
	start := &coordinate.Coordinate{Vec: []float64{0.01, 0, 0, 0, 0, 0, 0, 0}, Error: 1.5, Adjustment: 0, Height: 10.0e-6}
	cl.SetCoordinate(start)
	peerA := &coordinate.Coordinate{Vec: []float64{0, 0.02, 0, 0, 0, 0, 0, 0}, Error: 0.5, Adjustment: 0.001, Height: 0.0001}
	peerB := &coordinate.Coordinate{Vec: []float64{-0.03, 0, 0.01, 0, 0, 0, 0, 0}, Error: 1.0, Adjustment: 0, Height: 0.00005}
	rtts := []time.Duration{40 * time.Millisecond, 42 * time.Millisecond, 90 * time.Millisecond, 38 * time.Millisecond, 85 * time.Millisecond, 41 * time.Millisecond}
	for i, rtt := range rtts {
		peer, name := peerA, "a"
		if i%2 == 1 {
			peer, name = peerB, "b"
		}
		out, err := cl.Update(name, peer, rtt)
		if err != nil {
			panic(err)
		}
		fmt.Printf("step %d %x\n", i, enc(out))
	}
	fmt.Printf("dist %d\n", cl.GetCoordinate().DistanceTo(peerA))
}
