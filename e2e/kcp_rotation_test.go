package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/plan"
)

// planDoes reports whether any object of a plan has a reason of code.
func planDoes(p *plan.Plan, code string) bool {
	for _, a := range p.Objects {
		if slices.ContainsFunc(a.Reasons, func(r plan.Reason) bool { return r.Code == code }) {
			return true
		}
	}
	return false
}

// TestKCPClientCARotation walks the root shard's client CA through Add,
// Switch and Drop on a running kcp with two kcp-front-proxies behind a load
// balancer, while two clients send a request every 100 ms and reload their
// kubeconfig when it changes: the admin kubeconfig through the front-proxies
// and kcp's system:admin straight at the shard. kcp and the front-proxies
// reload their client-CA files themselves; the front-proxies are restarted
// one at a time after each phase for their own kubeconfig certificate
// (client-go rereads it only every five minutes). Not one request may fail
// for trust in any phase; after Drop the admin kubeconfig of generation 1 is
// refused. Then gitca revoke kubeconfig bob rotates the CA again: bob's
// copy keeps authenticating until Drop and is refused from then on, while
// the others keep working.
func TestKCPClientCARotation(t *testing.T) {
	RequireE2E(t)
	bins := requireKCPBinaries(t)
	root := RepoRoot(t)
	dir := t.TempDir()
	gitca, err := BuildGitca(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	const ip = "127.0.0.1"
	kcpPort, ports := FreePort(t, ip), []int{FreePort(t, ip), FreePort(t, ip)}
	p := renderKCPPKI(t, kcpPort, ports[0])
	shardURL, _ := startKCPShard(t, bins, p, kcpPort, "https://localhost:"+strconv.Itoa(ports[0]))
	proxies := make([]*Process, len(ports))
	var backends []string
	for i, port := range ports {
		proxies[i] = startFrontProxy(t, bins, p, fmt.Sprintf("kcp-front-proxy-%d", i), port, shardURL)
		backends = append(backends, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	lb := StartLoadBalancer(t, ip, backends...)
	server := "https://" + lb.Addr // the front-proxy's certificate names 127.0.0.1

	gitcaCmd := func(args ...string) string {
		t.Helper()
		out, err := gitcaRun(root, gitca, nil, append(args, "--topology", p.topology, "--state", p.state)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// status is what a kubeconfig's certificate gets listing namespaces
	// through the front-proxies.
	status := func(kubeconfig string) int {
		t.Helper()
		c := clientFromKubeconfig(t, kubeconfig)
		c.server = server + "/clusters/root"
		code, _, err := c.do(http.MethodGet, "/api/v1/namespaces?limit=1", "", nil)
		if err != nil {
			t.Fatalf("%s: %v", kubeconfig, err)
		}
		return code
	}
	lastRender := time.Now()
	phase := func(tally *Tally, name, reason string) {
		t.Helper()
		tally.SetPhase(name)
		// The soak is one second: wait it out, so each render is one phase.
		time.Sleep(time.Until(lastRender.Add(1500 * time.Millisecond)))
		pl := p.render(t)
		lastRender = time.Now()
		if !planDoes(pl, reason) {
			t.Fatalf("%s: the render did not carry out %s", name, reason)
		}
		for i, port := range ports {
			lb.Replace(backends[i], proxies[i].Stop, func() {
				proxies[i] = startFrontProxy(t, bins, p, fmt.Sprintf("kcp-front-proxy-%d", i), port, shardURL)
			})
		}
		time.Sleep(2 * time.Second)
	}

	adminKubeconfig := p.file("admin-kubeconfig", "kubeconfig")
	oldAdmin := filepath.Join(dir, "admin-generation-1.kubeconfig")
	copyFile(t, adminKubeconfig, oldAdmin)
	tally := newTally("before")
	const path = "/clusters/root/api/v1/namespaces?limit=1"
	viaProxy := StartRotationClient(t, "admin via the front-proxies", server, path, ClientFiles{Kubeconfig: adminKubeconfig}, tally, 100*time.Millisecond)
	atShard := StartRotationClient(t, "system:admin at the shard", shardURL, path,
		ClientFiles{Kubeconfig: p.file("root-admin-kubeconfig", "kubeconfig"), Context: "system:admin"}, tally, 100*time.Millisecond)
	time.Sleep(2 * time.Second)

	gitcaCmd("rotate", "ca", "root-client-ca", "--soak", "1s")
	phase(tally, "ca-add", plan.ReasonRotationAdd)
	phase(tally, "ca-switch", plan.ReasonRotationSwitch)
	phase(tally, "ca-drop", plan.ReasonRotationDrop)
	if code := status(oldAdmin); code != http.StatusUnauthorized {
		t.Errorf("after Drop the admin kubeconfig of generation 1 gets HTTP %d through the front-proxy, want 401", code)
	}

	bob := filepath.Join(dir, "bob-kept.kubeconfig") // a copy gitca cannot reach
	copyFile(t, p.file("bob-kubeconfig", "kubeconfig"), bob)
	if code := status(bob); code != http.StatusOK {
		t.Fatalf("bob before the revocation: HTTP %d, want 200", code)
	}
	out := gitcaCmd("revoke", "kubeconfig", "bob", "--soak", "1s")
	if !strings.Contains(out, "removed kubeconfig bob from Preset kcp's spec.kcp.kubeconfigs") || !strings.Contains(out, "CertificateAuthority root-client-ca rotates to generation 3") {
		t.Fatalf("gitca revoke kubeconfig bob:\n%s", out)
	}
	for _, ph := range []struct{ name, reason string }{
		{"revoke-add", plan.ReasonRotationAdd}, {"revoke-switch", plan.ReasonRotationSwitch}, {"revoke-drop", plan.ReasonRotationDrop},
	} {
		phase(tally, ph.name, ph.reason)
		want := http.StatusOK // Kubernetes and kcp check no revocation list: until Drop a copy authenticates
		if ph.name == "revoke-drop" {
			want = http.StatusUnauthorized
		}
		if code := status(bob); code != want {
			t.Errorf("%s: bob's copy gets HTTP %d through the front-proxy, want %d", ph.name, code, want)
		}
	}
	// Straight at the shard, bob's certificate is no one: kcp makes the
	// request anonymous, never bob.
	direct := clientFromKubeconfig(t, bob)
	direct.server = shardURL + "/clusters/root"
	if code, _, err := direct.do(http.MethodGet, "/api/v1/namespaces?limit=1", "", nil); err == nil && code == http.StatusOK {
		t.Errorf("after Drop bob's copy lists namespaces at the shard")
	}

	tally.SetPhase("after")
	time.Sleep(2 * time.Second)
	viaProxy.Stop()
	atShard.Stop()
	t.Logf("requests by phase (%d connections refused by a stopped front-proxy went to the other):\n%s", lb.Refused(), tally.Summary())
	tally.Require(t, func(phase string) bool { return strings.HasSuffix(phase, "-switch") })
}
