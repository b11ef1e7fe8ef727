// Command go-worker is a laissez worker written in Go, with the standard library only.
//
// `laissez consume --http http://127.0.0.1:8080/` verifies each message of the queue, spends
// its use, and only then POSTs it here: the message's body as the request body and the
// decision in laissez-* headers. Answering 2xx acks the message; any other status (or no
// answer within `--http-timeout`) dead-letters it. Nothing here checks a signature: a request
// reaches this handler only once laissez has authorised it, so listen on a loopback address
// that only the sidecar can reach.
//
// Each call handled is printed on stdout as one JSON line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
)

// call is what laissez says about one authorised message, from its headers.
type call struct {
	MessageID   string   `json:"message_id"`
	Agent       string   `json:"agent"`
	Tool        string   `json:"tool"`
	Class       string   `json:"class"`
	Obo         string   `json:"obo"`
	Session     string   `json:"session"`
	Cti         string   `json:"cti"`
	Use         string   `json:"use"`
	Chain       []string `json:"chain"`
	ApprovedBy  []string `json:"approved_by"`
	ContentType string   `json:"content_type"`
	Body        string   `json:"body"`
}

// maxBody bounds what one request may hold in memory.
const maxBody = 16 << 20

// tools are the tools this worker runs. Its laissez catalogue (`--tools`) lists the same
// ones; a tool it does not know is answered 404 and the message is dead-lettered.
var tools = map[string]bool{
	"crm.ticket.read":   true,
	"crm.ticket.update": true,
}

var stdout = struct {
	sync.Mutex
	*json.Encoder
}{Encoder: json.NewEncoder(os.Stdout)}

func handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "cannot read the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := call{
		MessageID:   r.Header.Get("Laissez-Message-Id"),
		Agent:       r.Header.Get("Laissez-Agent"),
		Tool:        r.Header.Get("Laissez-Tool"),
		Class:       r.Header.Get("Laissez-Class"),
		Obo:         r.Header.Get("Laissez-Obo"),
		Session:     r.Header.Get("Laissez-Session"),
		Cti:         r.Header.Get("Laissez-Cti"),
		Use:         r.Header.Get("Laissez-Use"),
		ContentType: r.Header.Get("Content-Type"),
		Body:        string(body),
	}
	// Two JSON arrays: the chain's agents, root first, and the approvers that counted.
	if err := json.Unmarshal([]byte(r.Header.Get("Laissez-Chain")), &c.Chain); err != nil {
		http.Error(w, "bad laissez-chain: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := json.Unmarshal([]byte(r.Header.Get("Laissez-Approved-By")), &c.ApprovedBy); err != nil {
		http.Error(w, "bad laissez-approved-by: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !tools[c.Tool] {
		http.Error(w, "no such tool here: "+c.Tool, http.StatusNotFound)
		return
	}
	// The work itself goes here. A redelivered message may come again under the same use
	// (laissez-use): laissez-message-id is the key to make the work idempotent.
	stdout.Lock()
	err = stdout.Encode(c)
	stdout.Unlock()
	if err != nil {
		http.Error(w, "cannot record the call", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the address to listen on (port 0 picks a free one)")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("go-worker: cannot listen on %s: %v", *addr, err)
	}
	// The address, port included, on stderr: for `laissez consume --http`.
	fmt.Fprintf(os.Stderr, "go-worker: listening on http://%s/\n", listener.Addr())
	log.Fatal(http.Serve(listener, http.HandlerFunc(handle)))
}
