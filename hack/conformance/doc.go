// Package conformance lints every certificate gitca issues for the example
// topologies with zlint. It is its own module so that zlint, zcrypto and their
// dependencies stay out of gitca's (and out of what govulncheck audits).
package conformance
