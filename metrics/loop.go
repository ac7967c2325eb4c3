package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/reconcile"
)

// Loop is the metrics and probes of a long-running reconciler. Observe is
// its reconcile.Options.OnRun.
type Loop struct {
	Registry *prometheus.Registry
	certs    *Certificates
	duration prometheus.Histogram
	success  prometheus.Gauge
	errors   *prometheus.CounterVec
	actions  *prometheus.GaugeVec

	interval time.Duration
	now      func() time.Time

	mu          sync.Mutex
	lastSuccess time.Time // by now(), for readiness
	lastErr     string
}

// NewLoop makes the metrics of a loop that runs every interval. now is the
// wall clock readiness is judged by (time.Now when nil); it is not the run's
// clock, which --now may pin to a date.
func NewLoop(interval time.Duration, now func() time.Time) *Loop {
	if now == nil {
		now = time.Now
	}
	l := &Loop{
		Registry: prometheus.NewRegistry(),
		certs:    &Certificates{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ReconcileDuration,
			Help: "How long a reconcile run took, from fetching to pushing, failed runs included.",
			// 0.1 s (nothing to do) to 7 min (an RSA-4096 tree created from scratch).
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 13),
		}),
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ReconcileLastSuccess,
			Help: "When the last successful reconcile run finished, as a Unix timestamp; 0 before the first.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ReconcileErrors,
			Help: "Failed reconcile runs by reason: " + strings.Join(reconcile.Reasons, ", ") + ".",
		}, []string{"reason"}),
		actions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: PlanActions,
			Help: "How many objects the last successful run's plan gave each action.",
		}, []string{"action"}),
		interval: interval,
		now:      now,
	}
	// Every reason starts at 0: increase() over a counter that appears at its
	// first failure misses that failure.
	for _, r := range reconcile.Reasons {
		l.errors.WithLabelValues(r)
	}
	l.Registry.MustRegister(l.certs, l.duration, l.success, l.errors, l.actions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return l
}

// Observe records one finished run.
func (l *Loop) Observe(run reconcile.Run) {
	l.duration.Observe(run.Duration.Seconds())
	if run.Err != nil {
		if errors.Is(run.Err, context.Canceled) {
			return // a shutdown, not a failure
		}
		l.errors.WithLabelValues(reconcile.ErrorReason(run.Err)).Inc()
		l.mu.Lock()
		l.lastErr = run.Err.Error()
		l.mu.Unlock()
		return
	}
	l.success.Set(unix(run.End))
	if run.Plan != nil {
		c := run.Plan.Counts()
		for _, k := range plan.ActionKinds {
			l.actions.WithLabelValues(string(k)).Set(float64(c[k]))
		}
	}
	if run.Status != nil {
		l.certs.Set(run.Status)
	}
	l.mu.Lock()
	l.lastSuccess, l.lastErr = l.now(), ""
	l.mu.Unlock()
}

// Ready reports whether the last successful run finished within two
// intervals: one failed run is tolerated (the next converges), two are not.
func (l *Loop) Ready() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lastSuccess.IsZero() && l.lastErr != "":
		return false, "no run has succeeded yet; last error: " + l.lastErr
	case l.lastSuccess.IsZero():
		return false, "the first run has not finished"
	}
	ago := l.now().Sub(l.lastSuccess)
	if ago > 2*l.interval {
		msg := fmt.Sprintf("the last successful run finished %s ago, more than 2 intervals of %s", ago.Round(time.Second), l.interval)
		if l.lastErr != "" {
			msg += "; last error: " + l.lastErr
		}
		return false, msg
	}
	return true, fmt.Sprintf("the last successful run finished %s ago", ago.Round(time.Second))
}

// Handler serves /metrics, /healthz (the process answers) and /readyz (Ready).
func (l *Loop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(l.Registry, promhttp.HandlerOpts{Registry: l.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := l.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
	})
	return mux
}

// Serve listens on addr and serves h until ctx is done. It returns once the
// listener is open, so a wrong address fails the command at start; serving
// errors after that are logged.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("serving metrics and probes", "address", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
