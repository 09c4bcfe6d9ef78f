// gonode is a HashiCorp memberlist node used by Rumor's interop tests: it joins a cluster,
// reports the members it sees over HTTP, and leaves on request or on SIGTERM.
//
// Build (Debian's memberlist, GOPATH mode):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o gonode .
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"reflect"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

type memberView struct {
	Name        string `json:"name"`
	Address     string `json:"address"`
	State       string `json:"state"`
	Incarnation uint32 `json:"incarnation"`
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

type seeds []string

func (s *seeds) String() string     { return strings.Join(*s, ",") }
func (s *seeds) Set(v string) error { *s = append(*s, strings.Split(v, ",")...); return nil }

func main() {
	name := flag.String("name", "", "node name")
	bind := flag.String("bind", "127.0.0.1", "bind address")
	port := flag.Int("port", 7946, "gossip port")
	httpAddr := flag.String("http", "127.0.0.1:0", "status HTTP address")
	profile := flag.String("profile", "lan", "lan or local")
	meta := flag.String("meta", "", "node metadata")
	key := flag.String("key", "", "base64 gossip encryption key (memberlist keyring)")
	var join seeds
	flag.Var(&join, "join", "seed host:port (repeatable)")
	flag.Parse()

	var config *memberlist.Config
	switch *profile {
	case "local":
		config = memberlist.DefaultLocalConfig()
	default:
		config = memberlist.DefaultLANConfig()
	}
	config.Name = *name
	config.BindAddr = *bind
	config.BindPort = *port
	config.AdvertiseAddr = *bind
	config.AdvertisePort = *port
	config.LogOutput = os.Stderr
	config.Delegate = metaDelegate(*meta)
	if *key != "" {
		secret, err := base64.StdEncoding.DecodeString(*key)
		if err != nil {
			log.Fatalf("key: %v", err)
		}
		config.SecretKey = secret
	}

	list, err := memberlist.Create(config)
	if err != nil {
		log.Fatalf("create: %v", err)
	}
	if len(join) > 0 {
		if _, err := list.Join(join); err != nil {
			log.Printf("join failed: %v", err)
		}
	}

	http.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(internalView(list))
	})
	http.HandleFunc("/leave", func(w http.ResponseWriter, r *http.Request) {
		err := list.Leave(5 * time.Second)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{"left": err == nil})
	})
	listener, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatalf("http: %v", err)
	}
	fmt.Printf("http=%s\n", listener.Addr().String())
	os.Stdout.Sync()
	go http.Serve(listener, nil)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	list.Leave(5 * time.Second)
	list.Shutdown()
}

type metaDelegate string

func (m metaDelegate) NodeMeta(limit int) []byte                  { return []byte(m) }
func (m metaDelegate) NotifyMsg([]byte)                           {}
func (m metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m metaDelegate) LocalState(join bool) []byte                { return nil }
func (m metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// internalView reads memberlist's own node table (unexported: nodes, nodeLock) so the test sees
// exactly what memberlist believes, dead and left members included until they are reaped.
// memberlist's public API lists only live members and does not say whether a member failed or left.
func internalView(list *memberlist.Memberlist) []memberView {
	value := reflect.ValueOf(list).Elem()
	lockField := value.FieldByName("nodeLock")
	lock := (*sync.RWMutex)(unsafe.Pointer(lockField.UnsafeAddr()))
	lock.RLock()
	defer lock.RUnlock()
	nodes := value.FieldByName("nodes")
	out := []memberView{}
	for i := 0; i < nodes.Len(); i++ {
		state := nodes.Index(i).Elem()
		node := state.FieldByName("Node")
		addr := net.IP(node.FieldByName("Addr").Bytes())
		port := int(node.FieldByName("Port").Uint())
		out = append(out, memberView{
			Name:        node.FieldByName("Name").String(),
			Address:     net.JoinHostPort(addr.String(), strconv.Itoa(port)),
			State:       stateName(memberlist.NodeStateType(state.FieldByName("State").Int())),
			Incarnation: uint32(state.FieldByName("Incarnation").Uint()),
		})
	}
	return out
}
