package reconcile

import (
	"errors"

	"github.com/gitca-dev/gitca/gitsync"
)

// Why a run failed, as gitca_reconcile_errors_total{reason} and the "reason"
// of the run's log line say it: each points at a different fix (see the
// operations runbook).
const (
	ReasonStateFetch    = "state-fetch"    // the state repository could not be cloned or fetched
	ReasonTopologyFetch = "topology-fetch" // the topology repository could not be cloned or fetched
	ReasonAuth          = "auth"           // a remote refused the credentials, or its host key is unknown
	ReasonTopology      = "topology"       // the topology does not load or is invalid
	ReasonRender        = "render"         // planning, opening a key, signing or sealing failed
	ReasonNotConverged  = "not-converged"  // the written tree plans to more changes: nothing was committed
	ReasonPlaintextKey  = "plaintext-key"  // a private key would have been committed unencrypted
	ReasonPushRejected  = "push-rejected"  // the state kept moving: every retry lost the race
	ReasonPush          = "push"           // the push failed otherwise
	ReasonPlanFile      = "plan-file"      // --plan-file could not be written
	ReasonOther         = "other"
)

// Reasons lists every reason, in the order the metrics help text names them.
var Reasons = []string{ReasonStateFetch, ReasonTopologyFetch, ReasonAuth, ReasonTopology, ReasonRender,
	ReasonNotConverged, ReasonPlaintextKey, ReasonPushRejected, ReasonPush, ReasonPlanFile, ReasonOther}

// stageError tags an error with the step of the run that failed.
type stageError struct {
	reason string
	err    error
}

func (e stageError) Error() string { return e.err.Error() }
func (e stageError) Unwrap() error { return e.err }

func pushError(err error) error {
	if errors.Is(err, gitsync.ErrRejected) {
		return err // WithRetry tries again; ErrorReason names it if it gives up
	}
	return stageError{ReasonPush, err}
}

// ErrorReason classifies a run's error as one of Reasons.
func ErrorReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, gitsync.ErrAuth):
		return ReasonAuth
	case errors.Is(err, gitsync.ErrRejected):
		return ReasonPushRejected
	}
	var se stageError
	if errors.As(err, &se) {
		return se.reason
	}
	return ReasonOther
}
