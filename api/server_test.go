package api

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/secure/securetest"
)

// plainServer is a server without ClickHouse over the sample city, with one token per role.
func plainServer(t *testing.T, edit func(*Config)) (*Server, map[Role]string) {
	t.Helper()
	tokens := map[Role]string{}
	var entries []string
	for _, r := range []Role{RoleSquad, RoleSupervisor, RoleAnalyst, RoleAdmin} {
		tok := "tok-" + string(r)
		tokens[r] = tok
		entries = append(entries, TokenEntry(r, "t-"+string(r), tok))
	}
	t.Setenv("MUCKWATCH_API_TOKENS", strings.Join(entries, ","))
	cfg := Config{}.WithDefaults()
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(cfg, NewLive(cfg), nil, histCity{histLoadCity(t)}, histNoRisk{}, nil, histLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, tokens
}

func request(t *testing.T, h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestGuard(t *testing.T) {
	s, tok := plainServer(t, func(c *Config) { c.RatePerSecond, c.Burst, c.MaxBodyBytes = 1, 3, 1024 })
	h := s.Handler()
	big := `{"action":"dismiss","reason":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		msg                             string
	}{
		{"no token", "GET", "/api/v1/alerts", "", "", 401, "missing bearer token"},
		{"unknown token", "GET", "/api/v1/alerts", "nope", "", 401, "unknown or revoked token"},
		{"wrong role", "GET", "/api/v1/alerts", tok[RoleSquad], "", 403, "role squad may not use GET /api/v1/alerts"},
		{"unknown endpoint", "GET", "/api/v1/teleport", tok[RoleAdmin], "", 404, "no such endpoint"},
		{"body too large", "POST", "/api/v1/alerts/x/actions", tok[RoleSupervisor], big, 413, "over 1024 bytes"},
		{"unknown field", "POST", "/api/v1/alerts/x/actions", tok[RoleSupervisor], `{"action":"resolve","by":"me"}`, 400, "unknown field"},
		{"plate too long", "GET", "/api/v1/vehicles/" + strings.Repeat("A", 40), tok[RoleSquad], "", 400, "not a licence plate"},
		{"public openapi", "GET", "/api/v1/openapi.json", "", "", 200, "openapi"},
	} {
		w := request(t, h, tc.method, tc.path, tc.token, tc.body)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.want, tc.msg)
		}
	}
	// the squad's bucket held 3 and one was spent above: two more pass, then 429
	codes := []int{}
	for range 3 {
		codes = append(codes, request(t, h, "GET", "/api/v1/vehicles/near?lat=22.5&lon=114", tok[RoleSquad], "").Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("rate limit: codes %v, want 200 200 429", codes)
	}
	w := request(t, h, "GET", "/api/v1/vehicles/near?lat=22.5&lon=114", tok[RoleAnalyst], "")
	if w.Code != 403 {
		t.Errorf("analyst on near: %d", w.Code)
	}
}

// With a certificate configured the API speaks HTTPS only.
func TestTLS(t *testing.T) {
	cert := securetest.SelfSigned(t)
	pool := cert.Pool
	s, tok := plainServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = cert.CertFile, cert.KeyFile })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/api/v1/alerts", nil)
	req.Header.Set("Authorization", "Bearer "+tok[RoleSupervisor])
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https: %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode < 400 {
			t.Errorf("plain HTTP answered %d on a TLS listener", plain.StatusCode)
		}
	}
}
