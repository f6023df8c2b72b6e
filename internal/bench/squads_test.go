package bench

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// squadsAPI is a stand-in for the API's vehicle lookup: it answers the known plates for the
// known tokens and counts what it was asked.
type squadsAPI struct {
	plates, tokens []string
	mu             sync.Mutex
	byToken        map[string]int
	asked          []string
}

func (a *squadsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	plate, ok := strings.CutPrefix(r.URL.Path, "/api/v1/vehicles/")
	a.mu.Lock()
	a.byToken[token]++
	a.asked = append(a.asked, plate)
	a.mu.Unlock()
	switch {
	case r.Method != http.MethodGet || !ok:
		http.Error(w, "no such endpoint", http.StatusNotFound)
	case !slices.Contains(a.tokens, token):
		http.Error(w, "bad token", http.StatusUnauthorized)
	case !slices.Contains(a.plates, plate):
		http.Error(w, "unknown plate", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"plate":"` + plate + `"}`))
	}
}

// TestSquadsChild runs the squads' lookups in a child process, as the bench does, against a
// stand-in API, open loop and closed loop, and checks that every lookup was made with a squad's
// token for one of the plates, and that what the child reports matches what the API saw.
func TestSquadsChild(t *testing.T) {
	plates := []string{"粤B10001", "粤B10002", "粤B10003", "粤B10004", "粤B10005"}
	tokens := []string{"t-alpha", "t-bravo", "t-charlie"}
	f := func(name string, rate float64, concurrency, lookups int, badToken bool) {
		t.Helper()
		a := &squadsAPI{plates: plates, tokens: tokens, byToken: map[string]int{}}
		srv := httptest.NewServer(a)
		defer srv.Close()
		use := tokens
		if badToken {
			use = append(slices.Clone(tokens), "t-revoked")
		}
		l := squadLoad{Base: srv.URL, Plates: plates, Tokens: use, Seed: 3, Lookups: lookups, Rate: rate, Concurrency: concurrency}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := l.runChild(ctx, testChild("squads"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if res.Lookups != lookups || len(a.asked) != lookups {
			t.Errorf("%s: the child reports %d lookups, the API saw %d, want %d", name, res.Lookups, len(a.asked), lookups)
		}
		for _, p := range a.asked {
			if !slices.Contains(plates, p) {
				t.Errorf("%s: looked up %q, not one of the plates", name, p)
			}
		}
		wantFailures := 0
		if badToken {
			wantFailures = a.byToken["t-revoked"]
			if wantFailures == 0 || !strings.Contains(res.FirstError, "401") {
				t.Errorf("%s: %d lookups with the revoked token, first error %q", name, wantFailures, res.FirstError)
			}
		}
		if res.Failures != wantFailures {
			t.Errorf("%s: %d failures reported, want %d", name, res.Failures, wantFailures)
		}
		if !(res.P50Ms > 0 && res.P50Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
			t.Errorf("%s: latencies p50 %g, p99 %g, max %g ms", name, res.P50Ms, res.P99Ms, res.MaxMs)
		}
		if res.MaxInFlight < 1 || (rate == 0 && res.MaxInFlight > concurrency) {
			t.Errorf("%s: at most %d lookups at once with %d clients", name, res.MaxInFlight, concurrency)
		}
		if !(res.Rate > 0) {
			t.Errorf("%s: rate %g", name, res.Rate)
		}
	}
	f("open loop", 2000, 0, 300, false)
	f("closed loop", 0, 2, 200, false)
	f("a revoked token", 0, 4, 200, true)
}

// TestSquadLoadValidate: a load that cannot be run is refused with what is wrong, before any
// process starts.
func TestSquadLoadValidate(t *testing.T) {
	good := squadLoad{Base: "http://127.0.0.1:1", Plates: []string{"粤B1"}, Tokens: []string{"a", "b"}, Lookups: 1, Rate: 10}
	f := func(edit func(*squadLoad), want string) {
		t.Helper()
		l := good
		edit(&l)
		err := l.validate()
		if want == "" {
			if err != nil {
				t.Errorf("validate: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate = %v, want an error with %q", err, want)
		}
	}
	f(func(*squadLoad) {}, "")
	f(func(l *squadLoad) { l.Rate, l.Concurrency = 0, 2 }, "")
	f(func(l *squadLoad) { l.Base = "" }, "base URL")
	f(func(l *squadLoad) { l.Plates = nil }, "no plates")
	f(func(l *squadLoad) { l.Tokens = nil }, "no tokens")
	f(func(l *squadLoad) { l.Lookups = 0 }, "at least 1")
	f(func(l *squadLoad) { l.Rate = -1 }, "negative")
	f(func(l *squadLoad) { l.Rate, l.Concurrency = 0, 3 }, "1 to 2 clients")
}

// TestCmdSquadsInput: the child refuses input it cannot read, saying what it expected.
func TestCmdSquadsInput(t *testing.T) {
	for _, in := range []string{"", "not json", `{"base":"http://x","plates":["a"],"tokens":["t"],"lookups":1,"rate":1,"extra":1}`} {
		var out bytes.Buffer
		err := Squads(context.Background(), strings.NewReader(in), &out)
		if err == nil || !strings.Contains(err.Error(), "cannot read the load") || out.Len() != 0 {
			t.Errorf("input %q: err %v, output %q", in, err, out.String())
		}
	}
}
